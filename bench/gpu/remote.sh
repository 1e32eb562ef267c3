#!/usr/bin/env bash
# Runs ON the GPU machine, from the copy of the repo, after prepare.sh's parts were sent (see README.md):
# assembles the MLX CUDA runtime, installs ltx-core, and runs step.py (ltx-core vs the engine).
# ONLY="quantized text_parity" runs just those test suites; STEP=0 skips the full-size step (and ltx-core).
set -euo pipefail
P=/tmp/ltx-gpu
rt=$P/rt
mkdir -p "$rt/mlx/lib" "$P/work"
cat "$P"/libmlx.so.xz.00 .gpu/b/libmlx.so.xz.01 >"$P/libmlx.so.xz"
python3 -c "import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], 'wb'))" \
  "$P/libmlx.so.xz" "$rt/mlx/lib/libmlx.so"
tar -C "$rt" -xJf .gpu/b/mlx_cuda_libs.tar.xz # + mlx/include/{cccl,cute,cutlass}, found beside libmlx by its JIT
# libmlx's rpath looks for cuBLAS/cuDNN/NCCL/NVRTC at $ORIGIN/../../nvidia/*/lib: use PyTorch's CUDA 13 wheels.
site=$(python3 -c 'import nvidia, os; print(os.path.dirname(list(nvidia.__path__)[0]))')
ln -sfn "$site/nvidia" "$rt/nvidia"
python3 -m pip install -q --no-index --no-deps --no-compile --target "$P/site" .gpu/b/*.whl
# MLX's JIT (the quantised matmuls) includes <crt/mma.h>, which PyTorch's CUDA wheels leave out: nvidia-cuda-crt's.
[ -e "$site/nvidia/cu13/include/crt/mma.h" ] || cp -r "$P/site/nvidia/cu13/include/crt" "$site/nvidia/cu13/include/"
export PYTHONPATH=$P/site LD_LIBRARY_PATH=$rt/mlx/lib PYTHONUNBUFFERED=1
chmod +x .gpu/b/gpu_step
if ldd .gpu/b/gpu_step | grep 'not found'; then exit 1; fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
# 1. The engine's test suites on the GPU backend (MLX's default device here), when prepare.sh packed them. Their
#    fixtures are found through the build-time manifest path, which points at this checkout.
if [ -d "$P/tests" ]; then
  root=$(cat "$P/tests/ROOT")
  mkdir -p "$(dirname "$root")" && ln -sfn "$PWD" "$root"
  for t in "$P"/tests/*-*; do
    name=$(basename "$t" | sed 's/-[0-9a-f]*$//')
    [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" $name "* ]] || continue
    chmod +x "$t"
    echo "== $(basename "$t")"
    "$t" --test-threads=1 --nocapture 2>&1 | grep --line-buffered -E '^test |test result|rel err|error|panicked|L2' || true
  done | tee "$OUT/tests.txt"
fi
# 2. The full-size step, engine vs ltx-core.
[ "${STEP:-1}" = 0 ] && exit 0
python3 bench/gpu/step.py .gpu/b/gpu_step "$P/work" "${ITERS:-5}" | tee "$OUT/report.json"
