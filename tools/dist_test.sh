#!/usr/bin/env bash
# Usage: bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py options]
# GPUS: processes on this node (CPU-only: gloo processes). Several nodes: NNODES,
# NODE_RANK, MASTER_ADDR and PORT from the environment, as torchrun's options.
set -euo pipefail
if [ $# -lt 3 ]; then sed -n 's/^# Usage: /usage: /p' "$0" >&2; exit 2; fi
if ! [[ "$3" =~ ^[1-9][0-9]*$ ]]; then
    echo "error: GPUS (3rd argument) must be a number of processes, got '$3'" >&2; exit 2
fi
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

PYTHONPATH="$ROOT:${PYTHONPATH:-}" \
torchrun --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" --master_port="$PORT" \
    "$ROOT/tools/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "${@:4}"
