#!/usr/bin/env bash
# Builds and links the engine (library, tests, benches) against the MLX CUDA wheel (mlx-cuda-13 0.32.2)
# without a GPU: proves the NVIDIA build path compiles. The CUDA libraries themselves (nvidia-* wheels,
# driver) are only needed at run time, so their absence is allowed at link time.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
MLX_HOME="$ROOT/.mlx-cuda" MLX_WHEEL=mlx-cuda-13==0.32.2 SKIP_APT=1 ./scripts/setup.sh
. ./scripts/env.sh
# A link check: no debug info and no incremental state, which would only cost disk.
MLX_PREFIX="$ROOT/.mlx-cuda/mlx" CARGO_TARGET_DIR="$ROOT/target/cuda" CARGO_INCREMENTAL=0 CARGO_PROFILE_DEV_DEBUG=0 \
  RUSTFLAGS="-C link-arg=-Wl,--allow-shlib-undefined" \
  cargo build --locked -p ltx-engine --lib --tests --benches
bin=$(find "$ROOT/target/cuda/debug/deps" -maxdepth 1 -type f -executable -name 'mlx_ops-*' | head -1)
readelf -d "$bin" | grep -q 'libmlx.so' || { echo "engine test binary does not link libmlx" >&2; exit 1; }
linked=$(grep -h '^cargo:libdir=' "$ROOT"/target/cuda/debug/build/mlx-sys-*/output | head -1 | cut -d= -f2)
readelf -d "$linked/libmlx.so" | grep -q 'libcublasLt' || { echo "$linked/libmlx.so is not the CUDA libmlx" >&2; exit 1; }
echo "cuda link check: engine tests and benches link against $(cat "$ROOT/.mlx-cuda/.wheel")"
