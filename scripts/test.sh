#!/usr/bin/env bash
# Set up a fresh checkout (idempotent) and run every check CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# shellcheck disable=SC1091
. ./scripts/env.sh
# 2 cores: one BLAS thread per test thread so the two never oversubscribe the machine.
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}

cargo fmt --all -- --check
# Sibling modules never import each other around a ring; the engine carries no IPC stack.
python3 scripts/check-cycles.py
if cargo tree --locked -p ltx-engine -e normal --prefix none | grep -Eq "^(tokio|interprocess) "; then
  echo "ltx-engine depends on the IPC stack (tokio/interprocess)" >&2
  exit 1
fi
cargo clippy --workspace --all-targets --locked -- -D warnings
# macOS-only code paths (socket/service/log paths, launchctl commands) type-check here: crates without C code.
rustup target add aarch64-apple-darwin
cargo check --locked --target aarch64-apple-darwin -p ltx-protocol -p ltx-service -p ltx-client --no-default-features
# The protocol crate alone, as the engine sees it (no `ipc`), on both platforms.
cargo check --locked -p ltx-protocol --lib
cargo check --locked --target aarch64-apple-darwin -p ltx-protocol --lib
# The tray too (tray-icon + tao on AppKit); notify-rust's macOS backend compiles Objective-C, so not that feature.
cargo check --locked --target aarch64-apple-darwin -p ltx-client --no-default-features --features tray
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked 2>&1 | tee "$log"
# The NVIDIA build path: the engine compiles and links against the MLX CUDA wheel (no GPU needed).
[ -n "${LTX_SKIP_CUDA_LINK:-}" ] || ./scripts/check-cuda-link.sh

# One closing line for the whole run (cargo prints one summary per test binary, doc-tests last).
sum() { grep '^test result:' "$log" | grep -Eo "[0-9]+ $1" | awk '{ n += $1 } END { print n + 0 }'; }
echo "tests: $(sum passed) passed, $(sum failed) failed, $(sum ignored) skipped"
