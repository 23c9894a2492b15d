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

config="" workdir="" nodes=1 gpus=8 time_limit="24:00:00" partition="" account=""
job_name="emollm" lead=300
while [ $# -gt 0 ]; do
  case "$1" in
    --config) need_value "$1" "${2:-}"; config="$2"; shift 2 ;;
    --workdir) need_value "$1" "${2:-}"; workdir="$2"; shift 2 ;;
    --nodes) need_value "$1" "${2:-}"; nodes="$2"; shift 2 ;;
    --gpus-per-node) need_value "$1" "${2:-}"; gpus="$2"; shift 2 ;;
    --time) need_value "$1" "${2:-}"; time_limit="$2"; shift 2 ;;
    --partition) need_value "$1" "${2:-}"; partition="$2"; shift 2 ;;
    --account) need_value "$1" "${2:-}"; account="$2"; shift 2 ;;
    --job-name) need_value "$1" "${2:-}"; job_name="$2"; shift 2 ;;
    --signal-lead) need_value "$1" "${2:-}"; lead="$2"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    --) shift; break ;;
    *) die "unknown argument '$1' (training overrides go after --)" ;;
  esac
done
[ -n "$config" ] || die "--config is required"
[ -n "$workdir" ] || die "--workdir is required"
need_int --nodes "$nodes"
need_int --gpus-per-node "$gpus"
need_int --signal-lead "$lead"
# The batch script runs on a compute node: hand it an absolute workdir.
case "$workdir" in /*) ;; *) workdir="$(pwd)/$workdir" ;; esac
note "$nodes node(s) x $gpus GPU(s) = $((nodes * gpus)) processes; logs in $workdir/logs"

sbatch=(sbatch "--job-name=$job_name" "--nodes=$nodes" "--ntasks-per-node=$gpus"
  "--gpus-per-node=$gpus" "--time=$time_limit" --requeue "--signal=B:USR1@$lead"
  "--output=$workdir/logs/%x-%j.out" "--chdir=$ROOT" "--export=ALL,EMOLLM_ROOT=$ROOT")
[ -z "$partition" ] || sbatch+=("--partition=$partition")
[ -z "$account" ] || sbatch+=("--account=$account")
run mkdir -p "$workdir/logs"
run "${sbatch[@]}" "$HERE/slurm_job.sh" --config "$config" --workdir "$workdir" -- "$@"
