#!/usr/bin/env bash
# Shared by slurm_train.sh and slurm_test.sh:
#   bash tools/_srun.sh PARTITION JOB_NAME TOOL.py N ARGS...
# runs tools/TOOL.py with ARGS (its N positional arguments first, then --launcher slurm,
# then the options) under srun. Sizes from the environment, as in
# OpenMMLab's scripts: GPUS (processes in all, default 8), GPUS_PER_NODE (default
# min(GPUS, 8)), CPUS_PER_TASK (default 5), SRUN_ARGS (extra srun flags).
set -euo pipefail
PARTITION=$1
JOB_NAME=$2
TOOL=$3
N=$4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-$(( GPUS < 8 ? GPUS : 8 ))}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

# SRUN_ARGS unquoted on purpose: it may hold several flags.
PYTHONPATH="$ROOT:${PYTHONPATH:-}" \
srun -p "$PARTITION" --job-name="$JOB_NAME" --gres=gpu:"$GPUS_PER_NODE" --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" --cpus-per-task="$CPUS_PER_TASK" --kill-on-bad-exit=1 \
    $SRUN_ARGS python -u "$ROOT/tools/$TOOL" "${@:5:$N}" --launcher slurm "${@:$((5 + N))}"
