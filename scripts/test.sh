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
cargo clippy --workspace --all-targets --locked -- -D warnings
# macOS-only code paths (socket/service/log paths, launchctl commands) type-check here: crates without C code.
rustup target add aarch64-apple-darwin
cargo check --locked --target aarch64-apple-darwin -p ltx-protocol -p ltx-client
cargo test --workspace --locked
# The NVIDIA build path: the engine compiles and links against the MLX CUDA wheel (no GPU needed).
[ -n "${LTX_SKIP_CUDA_LINK:-}" ] || ./scripts/check-cuda-link.sh
