#!/usr/bin/env bash
# Here (no GPU): builds the engine's full-size step binary against the MLX CUDA wheel and packs what the GPU
# machine needs into .gpu/{a,b} (git-ignored; each part < 64 MiB with the working tree), see README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
MLX_HOME="$ROOT/.mlx-cuda" MLX_WHEEL=mlx-cuda-13==0.32.2 SKIP_APT=1 ./scripts/setup.sh
. ./scripts/env.sh
MLX_PREFIX="$ROOT/.mlx-cuda/mlx" CARGO_TARGET_DIR="$ROOT/target/cuda" \
  RUSTFLAGS="-C link-arg=-Wl,--allow-shlib-undefined" cargo build --release --locked -p ltx-engine --bench gpu_step --tests
rm -rf .gpu && mkdir -p .gpu/a .gpu/b
bin=$(find target/cuda/release/deps -maxdepth 1 -type f -executable -name 'gpu_step-*' -printf '%T@ %p\n' | sort -n | tail -1 | cut -d' ' -f2)
strip -o .gpu/b/gpu_step "$bin"
# the engine's numerical test suites (those that need no ffmpeg), to run on the GPU backend
mkdir -p .gpu/a/tests && echo "$ROOT" >.gpu/a/tests/ROOT
for t in checkpoint mlx_ops transformer_parity transformer_sampling text_parity text_api quantized video_vae audio_vae upsampler; do
  f=$(find target/cuda/release/deps -maxdepth 1 -type f -executable -name "$t-*" -printf '%T@ %p\n' | sort -n | tail -1 | cut -d' ' -f2)
  strip -o ".gpu/a/tests/$(basename "$f")" "$f"
done
xz -T0 -6 -c .mlx-cuda/mlx/lib/libmlx.so | split -b 34300000 -d - .gpu/part.
mv .gpu/part.00 .gpu/a/libmlx.so.xz.00 && mv .gpu/part.01 .gpu/b/libmlx.so.xz.01
tar -C .mlx-cuda -cJf .gpu/b/mlx_cuda_libs.tar.xz mlx_cuda_13.libs mlx/include/cccl mlx/include/cute mlx/include/cutlass
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux2014_x86_64 -d .gpu/b einops ltx-core==1.0.0 'nvidia-cuda-crt==13.0.*'
du -sh .gpu/*
