#!/usr/bin/env bash
# One AV transformer forward at a mid-size config (4 layers, 32 heads, 1024 video + 40 audio tokens,
# 256 context tokens) from Rust (engine/examples/transformer_step.rs) and from the Python MLX peer
# mlx-video-with-audio 0.1.37 (bench/transformer_step.py) on identical weights and inputs, same MLX 0.32.2
# CPU wheel and the same BLAS, one after the other. Prints a Markdown table for BENCHMARKS.md.
#   LTX_BENCH_ITERS=3 bench/transformer_step.sh
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh >/dev/null
. ./scripts/env.sh
venv=.venv-bench-video
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import mlx_video" 2>/dev/null; then
  PIP_ROOT_USER_ACTION=ignore "$venv/bin/pip" install --quiet --disable-pip-version-check "mlx==0.32.2" "mlx-cpu==0.32.2" \
    numpy safetensors huggingface_hub pillow opencv-python-headless soundfile tqdm transformers
  PIP_ROOT_USER_ACTION=ignore "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps "mlx-video-with-audio==0.1.37"
fi
blas=$(cut -d' ' -f2- .mlx/runtime/STAMP)
preload=
[ -f "$blas/libblas.so.3" ] && preload="$blas/libblas.so.3:$blas/liblapack.so.3"
dir=target/bench-transformer
cargo build --release --quiet -p ltx-engine --example transformer_step
# Alternate the two sides (LTX_BENCH_ROUNDS, default 2) and keep each one's best median, so that load from
# other processes on this shared 2-core box biases neither side.
rust= py=
for _ in $(seq "${LTX_BENCH_ROUNDS:-2}"); do
  rust+=$'\n'$(LTX_BENCH_DIR=$dir cargo run --release --quiet -p ltx-engine --example transformer_step)
  py+=$'\n'$(LD_PRELOAD=$preload "$venv/bin/python" bench/transformer_step.py "$dir" | grep -v '^#')
done
best() { grep . | sort -k1,1 -k2,2n | awk '!seen[$1]++'; }
rust=$(echo "$rust" | best) py=$(echo "$py" | best)
echo "MLX 0.32.2 CPU, BLAS: $blas, $(nproc) cores, OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-unset}, iters ${LTX_BENCH_ITERS:-3}, best of ${LTX_BENCH_ROUNDS:-2} alternating rounds"
echo
echo "| step | Rust (mlx-rs) ms | Python (mlx-video) ms | Rust / Python |"
echo "|---|---|---|---|"
join <(echo "$rust") <(echo "$py") | while read -r op r p; do
  printf '| %s | %s | %s | %.3f |\n' "$op" "$r" "$p" "$(echo "$r / $p" | bc -l)"
done
