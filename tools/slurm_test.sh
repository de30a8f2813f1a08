#!/usr/bin/env bash
# Usage: GPUS=8 bash tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py options]
# As OpenMMLab's scripts, the sizes come from the environment (GPUS: processes in all,
# default 8; GPUS_PER_NODE: default min(GPUS, 8); CPUS_PER_TASK: default 5; SRUN_ARGS:
# extra srun flags), so that everything after CHECKPOINT reaches tools/test.py unchanged.
set -euo pipefail
if [ $# -lt 4 ]; then sed -n 's/^# Usage: /usage: /p' "$0" >&2; exit 2; fi
if [[ "${5:-}" =~ ^[0-9]+$ ]]; then
    echo "error: the GPU count comes from the environment, not a 5th argument:" \
         "GPUS=$5 bash $0 $1 $2 $3 $4 [test.py options]" >&2
    exit 2
fi
exec bash "$(dirname "$0")/_srun.sh" "$1" "$2" test.py 2 "$3" "$4" "${@:5}"
