#!/usr/bin/env bash
# Usage: bash tools/dist_train.sh CONFIG GPUS [train.py options]
# GPUS: processes on this node (CPU-only: gloo processes). Several nodes: NNODES,
# NODE_RANK, MASTER_ADDR and PORT from the environment, as torchrun's options.
set -euo pipefail
if [ $# -lt 2 ]; then sed -n 's/^# Usage: /usage: /p' "$0" >&2; exit 2; fi
if ! [[ "$2" =~ ^[1-9][0-9]*$ ]]; then
    echo "error: GPUS (2nd argument) must be a number of processes, got '$2'" >&2; exit 2
fi
CONFIG=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

PYTHONPATH="$ROOT:${PYTHONPATH:-}" \
torchrun --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" --master_port="$PORT" \
    "$ROOT/tools/train.py" "$CONFIG" --launcher pytorch "${@:3}"
