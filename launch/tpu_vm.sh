#!/usr/bin/env bash
# Cloud TPU VMs, one slice (gcloud compute tpus tpu-vm) or several (queued resources, Multislice):
# create, copy the code and set up the venv on every worker, train on all workers at once, read
# each worker's log, stop (SIGTERM: the trainer saves a checkpoint), delete.
#
# Needs, on the machine you run it from: bash, the Google Cloud CLI (`gcloud`, logged in, with
# the TPU API enabled) and git (the code is copied as `git archive HEAD` unless --repo is given).
# The workers get python3.11 from apt and the venv of launch/env.sh (requirements.txt +
# requirements-tpu.txt). Not yet tried on a real TPU VM: read the --dry-run output first.
#
# Usage: launch/tpu_vm.sh ACTION --name NAME --zone ZONE [options] [-- --config.a.b=v ...]
#   ACTION: create | setup | train | logs | stop | delete
#   --accelerator-type v5p-64   (v4/v5p count TensorCores, v5e/v6e chips; default v5p-8)
#   --num-slices N              (N > 1: a queued resource of N slices named NAME-0 ... NAME-<N-1>)
#   --version RUNTIME           (TPU software version; default by TPU generation)
#   --project PROJECT           (default: gcloud's configured project)
#   --repo URL [--ref REF]      (setup clones this instead of copying the local tree)
#   --config FILE --workdir DIR (train; DIR must be one folder every worker sees, e.g. an NFS
#                                mount: gs:// workdirs are not supported yet)
#   --lines N                   (logs: lines per worker, default 20)
#   --dry-run                   (print every command, run nothing)
# jax.distributed finds the pod's coordinator itself (the TPU metadata server; across slices the
# MEGASCALE_* variables the queued resource sets), so the train command names no addresses.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
# shellcheck source=launch/lib.sh
source "$HERE/lib.sh"

[ $# -gt 0 ] || die "usage: $0 create|setup|train|logs|stop|delete --name NAME --zone ZONE ..."
action="$1"
shift
name="" zone="" project="" accelerator_type="v5p-8" num_slices=1 version="" repo="" ref="main"
config="" workdir="" lines=20
parse_options "name zone project accelerator-type num-slices version repo ref config workdir lines" "$@"
set -- "${EXTRA_ARGS[@]}"
require name zone
need_int --num-slices "$num_slices"
need_int --lines "$lines"

# Workers (hosts) per slice: 4 chips per host, except single-host slices of up to 8 v5e/v6e chips.
[[ "$accelerator_type" =~ ^(v4|v5p|v5e|v5litepod|v6e)-([0-9]+)$ ]] \
  || die "--accelerator-type '$accelerator_type': expected v4-N, v5p-N, v5e-N (v5litepod-N) or v6e-N"
kind="${BASH_REMATCH[1]}" count="${BASH_REMATCH[2]}"
case "$kind" in
  v4 | v5p) chips=$((count / 2)); single_host_max=4 ;;
  *) chips="$count"; single_host_max=8 ;;
esac
[ "$chips" -ge 1 ] || die "--accelerator-type '$accelerator_type' has no chips"
if [ "$chips" -le "$single_host_max" ]; then workers=1; else workers=$((chips / 4)); fi
if [ -z "$version" ]; then
  case "$kind" in
    v4) version="tpu-ubuntu2204-base" ;;
    v5p) version="v2-alpha-tpuv5" ;;
    v5e | v5litepod) version="v2-alpha-tpuv5-lite" ;;
    v6e) version="v2-alpha-tpuv6e" ;;
  esac
fi
gflags=("--zone=$zone")
[ -z "$project" ] || gflags+=("--project=$project")
note "$accelerator_type x $num_slices slice(s): $chips chips and $workers worker(s) per slice," \
  "$((workers * num_slices)) workers in all"

# The node names: one TPU VM, or the queued resource's nodes NAME-0 ... NAME-<slices-1>.
nodes=("$name")
if [ "$num_slices" -gt 1 ]; then
  nodes=()
  for ((s = 0; s < num_slices; s++)); do nodes+=("$name-$s"); done
fi

# on_all CMD: run the remote shell command CMD on every worker of every slice at once.
on_all() {
  if [ "$num_slices" -gt 1 ]; then
    run gcloud compute tpus queued-resources ssh "$name" "${gflags[@]}" --node=all --worker=all \
      "--command=$1"
  else
    run gcloud compute tpus tpu-vm ssh "$name" "${gflags[@]}" --worker=all "--command=$1"
  fi
}

# shellcheck disable=SC2088  # the tilde is for the workers' shell to expand
logdir="~/emollm_logs"
case "$action" in
  create)
    if [ "$num_slices" -gt 1 ]; then
      run gcloud compute tpus queued-resources create "$name" "${gflags[@]}" \
        "--accelerator-type=$accelerator_type" "--runtime-version=$version" \
        "--node-count=$num_slices" "--node-prefix=$name"
    else
      run gcloud compute tpus tpu-vm create "$name" "${gflags[@]}" \
        "--accelerator-type=$accelerator_type" "--version=$version"
    fi
    ;;
  setup)
    python_setup="sudo apt-get update -qq && sudo apt-get install -y -qq python3.11 python3.11-venv"
    if [ -n "$repo" ]; then
      fetch="(git -C ~/emollm_jax fetch -q origin $(printf '%q' "$ref") && git -C ~/emollm_jax"
      fetch+=" checkout -q FETCH_HEAD) || git clone -q --branch $(printf '%q' "$ref")"
      fetch+=" $(printf '%q' "$repo") ~/emollm_jax"
    else
      archive="${TMPDIR:-/tmp}/emollm_jax-$name.tar.gz"
      run git -C "$ROOT" archive --format=tar.gz -o "$archive" HEAD
      for node in "${nodes[@]}"; do
        run gcloud compute tpus tpu-vm scp "$archive" "$node:emollm_jax.tar.gz" "${gflags[@]}" \
          --worker=all
      done
      fetch="mkdir -p ~/emollm_jax && tar -xzf ~/emollm_jax.tar.gz -C ~/emollm_jax"
    fi
    on_all "$python_setup && $fetch && cd ~/emollm_jax && PYTHON=python3.11 bash -c 'source launch/env.sh'"
    ;;
  train)
    [ -n "$config" ] || die "train: --config is required"
    [ -n "$workdir" ] || die "train: --workdir is required"
    [ "$((workers * num_slices))" -eq 1 ] \
      || note "every worker writes to $workdir: it must be one shared folder (e.g. NFS)"
    train=(.venv/bin/emollm train --config "$config" --workdir "$workdir"
      --config.distributed.initialize=on "$@")
    quoted=""
    for arg in "${train[@]}"; do quoted+="$(printf '%q' "$arg") "; done
    on_all "cd ~/emollm_jax && mkdir -p $logdir && JAX_PLATFORMS=tpu nohup ${quoted}\
> $logdir/train-\$(hostname).log 2>&1 < /dev/null & echo \$! > $logdir/train.pid"
    ;;
  logs)
    for node in "${nodes[@]}"; do
      for ((w = 0; w < workers; w++)); do
        run gcloud compute tpus tpu-vm ssh "$node" "${gflags[@]}" "--worker=$w" \
          "--command=echo \"== $node worker $w ==\"; tail -n $lines $logdir/train-*.log"
      done
    done
    ;;
  stop)
    on_all "kill \$(cat $logdir/train.pid) 2>/dev/null || true"
    ;;
  delete)
    if [ "$num_slices" -gt 1 ]; then
      run gcloud compute tpus queued-resources delete "$name" "${gflags[@]}" --force --quiet
    else
      run gcloud compute tpus tpu-vm delete "$name" "${gflags[@]}" --quiet
    fi
    ;;
  *) die "unknown action '$action': create, setup, train, logs, stop or delete" ;;
esac
