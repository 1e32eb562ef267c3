# Sourced by the scripts: puts cargo on PATH.
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
