#!/usr/bin/env bash
# Set up, start ltxd with its own temporary directories, submit a generation, follow it to the end, stop ltxd.
# Exits 0 only if the job completed (until the LTX-2 engine and its weights are installed, the job fails with
# a clear "model not installed" error naming the file to download).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# shellcheck disable=SC1091
. ./scripts/env.sh
cargo build --release --locked -p ltxd -p ltx-client
bin=$PWD/target/release
demo=${LTX_DEMO_DIR:-$(mktemp -d /tmp/ltx-demo.XXXXXX)}
mkdir -p "$demo"
export LTX_CONFIG=$demo/config.toml LTX_SOCKET=$demo/run/ltxd.sock LTXD_BIN=$bin/ltxd
cat >"$LTX_CONFIG" <<TOML
state_dir = "$demo/state"
outputs_dir = "$demo/outputs"
log_dir = "$demo/logs"
TOML
"$bin/ltxctl" daemon start
trap '"$bin/ltxctl" daemon stop >/dev/null || true' EXIT
status=0
"$bin/ltxctl" submit "${LTX_DEMO_PROMPT:-A red fox trotting through fresh snow at dawn, cinematic}" --wait || status=$?
if [ "$status" -ne 0 ]; then
    echo "demo: the job did not complete (ltxctl exit $status; see the message above). Daemon log: $demo/logs" >&2
fi
exit "$status"
