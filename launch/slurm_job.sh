#!/usr/bin/env bash
# The SLURM batch script launch/slurm.sh submits (sbatch runs it on the job's first node): one
# training process per GPU through srun. jax.distributed.initialize() reads the job from SLURM's
# variables (SLURM_JOB_ID, SLURM_STEP_NODELIST, SLURM_NTASKS, SLURM_PROCID, SLURM_LOCALID): the
# coordinator is the first node, and each process takes the GPU of its local rank.
#
# Preemption and time limits: the job is requeueable (--requeue); SLURM's SIGTERM reaches every
# process through srun and the trainer saves a checkpoint before it exits. Before the time limit
# SLURM sends this script USR1 (--signal=B:USR1@LEAD): it passes SIGTERM on to the processes,
# waits for their checkpoint and requeues the job. A requeued job runs this script again with
# the same workdir, and training resumes from the latest checkpoint there. On preemption the
# processes have only the cluster's grace time (GraceTime / KillWait, often 30 s) to save:
# config.checkpoint.every_steps bounds the work lost when that is too short for a large model.
#
# Needs: SLURM (srun, scontrol), NVIDIA GPUs, the workdir and this checkout on storage every node
# sees, and the venv of launch/env.sh made once beforehand with EMOLLM_ACCEL=gpu.
#
# Usage (normally through launch/slurm.sh): sbatch [options] launch/slurm_job.sh \
#          --config FILE --workdir DIR [--dry-run] [-- --config.a.b=v ...]
# --dry-run prints the srun command for the job's current SLURM variables and runs nothing.
set -euo pipefail
ROOT="${EMOLLM_ROOT:-${SLURM_SUBMIT_DIR:-$(pwd)}}"
# shellcheck source=launch/lib.sh
source "$ROOT/launch/lib.sh"

config="" workdir=""
parse_options "config workdir" "$@"
set -- "${EXTRA_ARGS[@]}"
require config workdir
nodes="${SLURM_JOB_NUM_NODES:-1}"
gpus="${SLURM_GPUS_ON_NODE:-1}"
note "job ${SLURM_JOB_ID:-?} (restart ${SLURM_RESTART_COUNT:-0}): $nodes node(s) x $gpus GPU(s)," \
  "$((nodes * gpus)) processes, workdir $workdir"

step=(srun "--nodes=$nodes" "--ntasks-per-node=$gpus" --kill-on-bad-exit=1
  env JAX_PLATFORMS=cuda
  "$ROOT/.venv/bin/emollm" train --config "$config" --workdir "$workdir" "$@")
if [ "$DRY_RUN" = 1 ]; then
  run "${step[@]}"
  exit 0
fi

cd "$ROOT"
export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error
time_up=0
# shellcheck disable=SC2317  # called by the USR1 trap
on_time_limit() {
  time_up=1
  echo "time limit near: SIGTERM to the training processes (they save a checkpoint)" >&2
  kill -TERM "$srun_pid" 2>/dev/null || true
}
trap on_time_limit USR1
"${step[@]}" &
srun_pid=$!
status=0
# `wait` returns early when USR1 arrives; wait again for the processes to finish saving.
wait "$srun_pid" || status=$?
while kill -0 "$srun_pid" 2>/dev/null; do wait "$srun_pid" || status=$?; done
# 75: the trainer's hang watchdog ended a run whose steps stopped finishing: worth a restart.
if [ "$time_up" = 1 ] || [ "$status" = 75 ]; then
  echo "requeueing job $SLURM_JOB_ID to resume from the latest checkpoint" >&2
  scontrol requeue "$SLURM_JOB_ID"
  exit 0
fi
exit "$status"
