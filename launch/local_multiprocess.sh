#!/usr/bin/env bash
# Several JAX processes on this one machine forming one JAX system, to try multi-host behaviour
# (sharded data loading, per-process checkpoint pieces, resume) without a cluster: a loopback
# coordinator, gloo CPU collectives, N fake CPU devices per process.
#
# Needs: bash, and the project's Python environment (./.venv, made by launch/env.sh on first
# use; set EMOLLM_NO_VENV=1 to use the python on PATH as it is).
#
# Usage: launch/local_multiprocess.sh --config configs/llava_tiny.py --workdir runs/mp \
#          [--processes 2] [--devices-per-process 4] [--port 12355] [--dry-run] [-- --config.a.b=v ...]
# Each process logs to WORKDIR/logs/process_<i>.log; the script waits for all of them and exits
# non-zero (stopping the others) as soon as one fails. Rerunning with the same workdir resumes.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=launch/lib.sh
source "$HERE/lib.sh"

config="" workdir="" processes=2 devices_per_process=4 port=12355
parse_options "config workdir processes devices-per-process port" "$@"
set -- "${EXTRA_ARGS[@]}"
require config workdir
need_int --processes "$processes"
need_int --devices-per-process "$devices_per_process"
need_int --port "$port"

if [ "$DRY_RUN" = 1 ]; then
  [ -n "${EMOLLM_NO_VENV:-}" ] || run source "$HERE/env.sh"
else
  # shellcheck source=launch/env.sh
  [ -n "${EMOLLM_NO_VENV:-}" ] || source "$HERE/env.sh"
fi
note "$processes processes x $devices_per_process CPU devices = $((processes * devices_per_process)) devices," \
  "coordinator 127.0.0.1:$port, logs in $workdir/logs"
run mkdir -p "$workdir/logs"

pids=()
for ((i = 0; i < processes; i++)); do
  cmd=(env JAX_PLATFORMS=cpu
    "XLA_FLAGS=${XLA_FLAGS:+$XLA_FLAGS }--xla_force_host_platform_device_count=$devices_per_process"
    python -m emollm_jax.train --config "$config" --workdir "$workdir"
    --config.distributed.initialize=on
    "--config.distributed.coordinator_address=127.0.0.1:$port"
    "--config.distributed.num_processes=$processes"
    "--config.distributed.process_id=$i"
    "$@")
  if [ "$DRY_RUN" = 1 ]; then
    run "${cmd[@]}"
  else
    "${cmd[@]}" >"$workdir/logs/process_$i.log" 2>&1 &
    pids+=("$!")
  fi
done
[ "$DRY_RUN" = 1 ] && exit 0

# shellcheck disable=SC2317  # called by the trap and below
stop_all() {
  local pid
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
}
trap stop_all INT TERM
status=0
for ((n = 0; n < processes; n++)); do
  if ! wait -n "${pids[@]}"; then
    status=1
    echo "a process failed; stopping the others (logs: $workdir/logs)" >&2
    stop_all
    wait || true
    break
  fi
done
tail -n 3 "$workdir"/logs/process_*.log
exit "$status"
