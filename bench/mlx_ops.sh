#!/usr/bin/env bash
# Same MLX operations from Rust (mlx-rs) and from Python mlx, on the same MLX 0.32.2 CPU wheel and the
# same BLAS, one after the other on this machine. Prints a Markdown table for BENCHMARKS.md.
#   LTX_BENCH_ITERS=10 bench/mlx_ops.sh
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh >/dev/null
. ./scripts/env.sh
venv=.venv-bench
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  PIP_ROOT_USER_ACTION=ignore "$venv/bin/pip" install --quiet --disable-pip-version-check "mlx==0.32.2" "mlx-cpu==0.32.2"
fi
blas=$(cut -d' ' -f2- .mlx/runtime/STAMP)
# Python's libmlx loads the wheel's reference BLAS; put the same OpenBLAS in front of it as the Rust side uses.
preload=
[ -f "$blas/libblas.so.3" ] && preload="$blas/libblas.so.3:$blas/liblapack.so.3"
cargo build --release --quiet -p ltx-engine --bench mlx_ops
bin=$(ls -t target/release/deps/mlx_ops-* | grep -v '\.d$' | head -1)
rust=$("$bin")
py=$(LD_PRELOAD=$preload "$venv/bin/python" bench/mlx_ops.py)
echo "MLX 0.32.2 CPU, BLAS: $blas, $(nproc) cores, OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-unset}"
echo
echo "| operation | Rust wall ms | Python wall ms | Rust CPU ms | Python CPU ms | Rust / Python (CPU) |"
echo "|---|---|---|---|---|---|"
join <(echo "$rust" | sort) <(echo "$py" | sort) | while read -r op rw rc pw pc; do
  awk -v o="$op" -v rw="$rw" -v rc="$rc" -v pw="$pw" -v pc="$pc" \
    'BEGIN { printf "| %s | %s | %s | %s | %s | %.3f |\n", o, rw, pw, rc, pc, rc / pc }'
done
