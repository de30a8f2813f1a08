#!/usr/bin/env bash
# Shared by dist_train.sh and dist_test.sh: bash tools/_torchrun.sh NPROC TOOL.py N ARGS...
# runs tools/TOOL.py with ARGS (its N positional arguments first, then --launcher pytorch,
# then the options) in NPROC processes on this node. Several
# nodes: NNODES, NODE_RANK, MASTER_ADDR and PORT from the environment, as torchrun's options.
set -euo pipefail
NPROC=$1
TOOL=$2
N=$3
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHONPATH="$ROOT:${PYTHONPATH:-}" \
torchrun --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" --nproc_per_node="$NPROC" \
    --master_port="${PORT:-29500}" "$ROOT/tools/$TOOL" "${@:4:$N}" --launcher pytorch "${@:$((4 + N))}"
