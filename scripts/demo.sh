#!/usr/bin/env bash
# Set up, start ltxd with its own temporary directories, submit a generation, follow it to the end, stop ltxd.
# The models directory holds the bundled tiny LTX-2 model set (random weights in the real layouts: a real run of
# the whole pipeline in seconds on a CPU, producing an MP4 of noise); LTX_DEMO_MODELS=<dir> uses real weights.
# Exits 0 only if the job completed.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# shellcheck disable=SC1091
. ./scripts/env.sh
cargo build --release --locked -p ltxd -p ltx-client -p ltx-engine --bins
bin=$PWD/target/release
demo=${LTX_DEMO_DIR:-$(mktemp -d /tmp/ltx-demo.XXXXXX)}
mkdir -p "$demo"
models=${LTX_DEMO_MODELS:-$demo/models}
[ -n "${LTX_DEMO_MODELS:-}" ] || "$bin/ltx-generate" bundle-tiny "$models"
export LTX_CONFIG=$demo/config.toml LTX_SOCKET=$demo/run/ltxd.sock LTXD_BIN=$bin/ltxd
cat >"$LTX_CONFIG" <<TOML
state_dir = "$demo/state"
outputs_dir = "$demo/outputs"
log_dir = "$demo/logs"
models_dir = "$models"
TOML
"$bin/ltxctl" daemon start
trap '"$bin/ltxctl" daemon stop >/dev/null || true' EXIT
status=0
size=${LTX_DEMO_SIZE:-256x256}
frames=${LTX_DEMO_FRAMES:-33}
"$bin/ltxctl" submit "${LTX_DEMO_PROMPT:-A red fox trotting through fresh snow at dawn, cinematic}" \
  --size "$size" --frames "$frames" --wait || status=$?
if [ "$status" -ne 0 ]; then
    echo "demo: the job did not complete (ltxctl exit $status; see the message above). Daemon log: $demo/logs" >&2
fi
exit "$status"
