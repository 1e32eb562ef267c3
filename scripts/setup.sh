#!/usr/bin/env bash
# Idempotent setup of a fresh checkout: system packages, the MLX runtime from PyPI, mlx-c sources.
# Needs only apt, PyPI and crates.io. Safe to run again; fast when nothing changed.
#
#   MLX_WHEEL=mlx-cpu==0.32.2      (default; Linux CPU backend)
#   MLX_WHEEL=mlx-cuda-13==0.32.2  (NVIDIA; needs the nvidia-* CUDA 13 wheels at run time)
#   MLX_HOME=DIR                   (where the wheel goes; default .mlx, which .cargo/config.toml names)
#   LTX_BLAS=bundled               (keep the wheel's reference BLAS instead of the system's OpenBLAS)
#   SKIP_APT=1                     (do not touch system packages)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
MLX_HOME=${MLX_HOME:-$ROOT/.mlx}
MLX_VERSION=0.32.2 # = the MLX that mlx-c 0.7.0 (mlx-sys 0.7.0, mlx-rs 0.33.0) pins

case "$(uname -s)" in
Darwin) MLX_WHEEL=${MLX_WHEEL:-mlx-metal==$MLX_VERSION} ;;
*) MLX_WHEEL=${MLX_WHEEL:-mlx-cpu==$MLX_VERSION} ;;
esac

# Cargo (present on the dev/CI image; installed only where missing).
if ! command -v cargo >/dev/null && [ ! -x "$HOME/.cargo/bin/cargo" ]; then
  echo "cargo not found: install Rust from https://rustup.rs" >&2
  exit 1
fi

# 1. System packages (Linux): C++20 compiler, libclang for bindgen, an optimised BLAS,
#    SQLite's build needs nothing extra (bundled). Only missing packages are installed.
if [ "$(uname -s)" = Linux ] && command -v apt-get >/dev/null && [ -z "${SKIP_APT:-}" ]; then
  want=(g++ libclang-dev python3-pip libopenblas0-pthread pkg-config ffmpeg nasm)
  # ltx-tray (GTK, libayatana-appindicator) and its tests: Xvfb, a D-Bus session, python3-dbus/gi fakes of the
  # StatusNotifierWatcher and notification server, gdbus, xdotool; systemd-analyze verifies the user units.
  want+=(libgtk-3-dev libayatana-appindicator3-dev xvfb xauth dbus-daemon dbus-x11 libglib2.0-bin xdotool
    python3-dbus python3-gi systemd)
  missing=()
  for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

# 2. MLX (shared library, headers, CMake config) from its PyPI wheel into $MLX_HOME — no Python at run time.
if [ ! -d "$MLX_HOME/mlx/include" ] || [ "$(cat "$MLX_HOME/.wheel" 2>/dev/null)" != "$MLX_WHEEL" ]; then
  rm -rf "$MLX_HOME"
  PIP_ROOT_USER_ACTION=ignore "$PY" -m pip install --quiet --disable-pip-version-check --no-deps --target "$MLX_HOME" "$MLX_WHEEL"
  echo "$MLX_WHEEL" >"$MLX_HOME/.wheel"
fi

# 3. mlx-c sources from the published mlx-sys 0.7.0 crate (fetched through cargo; nothing committed).
if [ ! -f "$ROOT/engine/mlx-sys/mlx-c/CMakeLists.txt" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp/fetch/src" && : >"$tmp/fetch/src/lib.rs"
  printf '[package]\nname = "fetch"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\nmlx-sys = "=0.7.0"\n' \
    >"$tmp/fetch/Cargo.toml"
  (cd "$tmp/fetch" && cargo fetch --quiet)
  crate=$(find "${CARGO_HOME:-$HOME/.cargo}/registry/cache" -name 'mlx-sys-0.7.0.crate' | head -1)
  [ -n "$crate" ] || { echo "mlx-sys-0.7.0.crate not found after cargo fetch" >&2; exit 1; }
  tar -xzf "$crate" -C "$tmp" mlx-sys-0.7.0/src/mlx-c
  rm -rf "$ROOT/engine/mlx-sys/mlx-c"
  mv "$tmp/mlx-sys-0.7.0/src/mlx-c" "$ROOT/engine/mlx-sys/mlx-c"
fi

# 4. Runtime folder $MLX_HOME/runtime/: the wheel's layout (libmlx's rpath is $ORIGIN/../../<pkg>.libs) with
#    symlinked files in real folders, so that the wheel's reference BLAS/LAPACK (~4 GFLOP/s sgemm) can be
#    swapped for the system's OpenBLAS. LTX_BLAS=bundled keeps the wheel's own.
blas_dir=
if [ "${LTX_BLAS:-auto}" = auto ]; then
  for d in /usr/lib/"$(uname -m)"-linux-gnu/openblas-pthread /usr/lib/"$(uname -m)"-linux-gnu/openblas-openmp; do
    if [ -f "$d/libblas.so.3" ] && [ -f "$d/liblapack.so.3" ]; then blas_dir=$d; break; fi
  done
fi
rt="$MLX_HOME/runtime"
stamp="$(cat "$MLX_HOME/.wheel") ${blas_dir:-bundled reference BLAS}"
if [ "$(cat "$rt/STAMP" 2>/dev/null)" != "$stamp" ]; then
  rm -rf "$rt" && mkdir -p "$rt/mlx/lib"
  for f in "$MLX_HOME"/mlx/lib/*; do ln -s "$f" "$rt/mlx/lib/"; done
  for d in "$MLX_HOME"/*.libs; do
    [ -d "$d" ] || continue
    mkdir -p "$rt/$(basename "$d")"
    for f in "$d"/*; do
      case "$(basename "$f")" in
      libblas*) target=${blas_dir:+$blas_dir/libblas.so.3} ;;
      liblapack*) target=${blas_dir:+$blas_dir/liblapack.so.3} ;;
      *) target= ;;
      esac
      ln -s "${target:-$f}" "$rt/$(basename "$d")/$(basename "$f")"
    done
  done
  # mlx-cuda-13 finds cuBLAS/cuDNN at $ORIGIN/../../nvidia/*/lib
  [ -d "$MLX_HOME/nvidia" ] && ln -s "$MLX_HOME/nvidia" "$rt/nvidia"
  echo "$stamp" >"$rt/STAMP"
fi

echo "setup: $(cat "$MLX_HOME/.wheel") in $MLX_HOME (BLAS: ${blas_dir:-bundled reference}), mlx-c in engine/mlx-sys/mlx-c"
