#!/usr/bin/env bash
# Usage: bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py options]
# GPUS: processes on this node (CPU-only: gloo processes). Several nodes: NNODES,
# NODE_RANK, MASTER_ADDR and PORT from the environment, as torchrun's options.
set -euo pipefail
if [ $# -lt 3 ]; then sed -n 's/^# Usage: /usage: /p' "$0" >&2; exit 2; fi
if ! [[ "$3" =~ ^[1-9][0-9]*$ ]]; then
    echo "error: GPUS (3rd argument) must be a number of processes, got '$3'" >&2; exit 2
fi
exec bash "$(dirname "$0")/_torchrun.sh" "$3" test.py 2 "$1" "$2" "${@:4}"
