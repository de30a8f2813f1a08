#!/usr/bin/env bash
# Usage: GPUS=16 bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG [train.py options]
# As OpenMMLab's scripts, the sizes come from the environment (GPUS: processes in all,
# default 8; GPUS_PER_NODE: default min(GPUS, 8); CPUS_PER_TASK: default 5; SRUN_ARGS:
# extra srun flags), so that everything after CONFIG reaches tools/train.py unchanged.
set -euo pipefail
if [ $# -lt 3 ]; then sed -n 's/^# Usage: /usage: /p' "$0" >&2; exit 2; fi
if [[ "${4:-}" =~ ^[0-9]+$ ]]; then
    echo "error: the GPU count comes from the environment, not a 4th argument:" \
         "GPUS=$4 bash $0 $1 $2 $3 [train.py options]" >&2
    exit 2
fi
exec bash "$(dirname "$0")/_srun.sh" "$1" "$2" train.py 1 "$3" "${@:4}"
