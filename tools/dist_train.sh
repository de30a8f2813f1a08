#!/usr/bin/env bash
# Usage: bash tools/dist_train.sh CONFIG GPUS [train.py options]
# GPUS: processes on this node (CPU-only: gloo processes). Several nodes: NNODES,
# NODE_RANK, MASTER_ADDR and PORT from the environment, as torchrun's options.
set -euo pipefail
if [ $# -lt 2 ]; then sed -n 's/^# Usage: /usage: /p' "$0" >&2; exit 2; fi
if ! [[ "$2" =~ ^[1-9][0-9]*$ ]]; then
    echo "error: GPUS (2nd argument) must be a number of processes, got '$2'" >&2; exit 2
fi
exec bash "$(dirname "$0")/_torchrun.sh" "$2" train.py 1 "$1" "${@:3}"
