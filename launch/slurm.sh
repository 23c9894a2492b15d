#!/usr/bin/env bash
# Submit a training job to a SLURM GPU cluster: NODES nodes x GPUS GPUs, one JAX process per GPU
# (launch/slurm_job.sh is the batch script; its header says how preemption and requeue work).
#
# Needs: bash and SLURM's sbatch on the login node; this checkout on storage every node sees,
# with its venv made once on a GPU node: EMOLLM_ACCEL=gpu bash -c 'source launch/env.sh'
# (requirements.txt + requirements-gpu.txt). WORKDIR must be on shared storage too: every process
# writes its part of each checkpoint there, and a requeued job resumes from it.
#
# Usage: launch/slurm.sh --config FILE --workdir DIR [--nodes 2] [--gpus-per-node 8]
#          [--time 24:00:00] [--partition P] [--account A] [--job-name emollm]
#          [--signal-lead 300] [--dry-run] [-- --config.a.b=v ...]
# --signal-lead: seconds before the time limit at which the job saves and requeues itself.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
# shellcheck source=launch/lib.sh
source "$HERE/lib.sh"

config="" workdir="" nodes=1 gpus_per_node=8 time="24:00:00" partition="" account=""
job_name="emollm" signal_lead=300
parse_options "config workdir nodes gpus-per-node time partition account job-name signal-lead" "$@"
set -- "${EXTRA_ARGS[@]}"
require config workdir
need_int --nodes "$nodes"
need_int --gpus-per-node "$gpus_per_node"
need_int --signal-lead "$signal_lead"
# The batch script runs on a compute node: hand it an absolute workdir.
case "$workdir" in /*) ;; *) workdir="$(pwd)/$workdir" ;; esac
note "$nodes node(s) x $gpus_per_node GPU(s) = $((nodes * gpus_per_node)) processes; logs in $workdir/logs"

sbatch=(sbatch "--job-name=$job_name" "--nodes=$nodes" "--ntasks-per-node=$gpus_per_node"
  "--gpus-per-node=$gpus_per_node" "--time=$time" --requeue "--signal=B:USR1@$signal_lead"
  "--output=$workdir/logs/%x-%j.out" "--chdir=$ROOT" "--export=ALL,EMOLLM_ROOT=$ROOT")
[ -z "$partition" ] || sbatch+=("--partition=$partition")
[ -z "$account" ] || sbatch+=("--account=$account")
run mkdir -p "$workdir/logs"
run "${sbatch[@]}" "$HERE/slurm_job.sh" --config "$config" --workdir "$workdir" -- "$@"
