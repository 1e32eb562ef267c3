#!/usr/bin/env bash
# `make install` for ltx: a release build of ltxd, ltxctl and ltx-tray, then `ltxctl service install`, which copies
# them with the MLX runtime into one folder (~/.local/share/ltx/bin, or ~/Library/Application Support/ltx/bin and
# ~/Applications/LTX.app on macOS) and starts ltxd at login. Idempotent; `ltxctl service uninstall` undoes it.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# shellcheck disable=SC1091
. ./scripts/env.sh
cargo build --release --locked -p ltxd -p ltx-client --bins
exec ./target/release/ltxctl service install --from target/release "$@"
