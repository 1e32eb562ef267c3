#!/usr/bin/env bash
# Idempotent setup for a fresh checkout (filled in by the MLX build work).
set -euo pipefail
