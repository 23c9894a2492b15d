# shellcheck shell=bash
# Sourced by the launch scripts: creates and fills ./.venv when it is missing or stale.
# Re-installs only when requirements*.txt or pyproject.toml changed (a stamp records their hash).
# EMOLLM_ACCEL picks the accelerator requirements: tpu (default: libtpu, also what ahead-of-time
# compilation on a CPU machine needs) or gpu (requirements-gpu.txt: the CUDA 12 plugin).
# EMOLLM_NO_VENV=1 skips the virtualenv: the python on PATH is used as it is.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
case "${EMOLLM_ACCEL:-tpu}" in
  tpu) ACCEL_REQUIREMENTS="$ROOT/requirements-tpu.txt" ;;
  gpu) ACCEL_REQUIREMENTS="$ROOT/requirements-gpu.txt" ;;
  *) echo "EMOLLM_ACCEL must be tpu or gpu, got '${EMOLLM_ACCEL}'" >&2; exit 2 ;;
esac
if [ -z "${EMOLLM_NO_VENV:-}" ]; then
  VENV="${EMOLLM_VENV:-$ROOT/.venv}"
  PY="${PYTHON:-python3}"
  stamp="$VENV/.requirements.sha256"
  want="$(sha256sum "$ROOT/requirements.txt" "$ACCEL_REQUIREMENTS" "$ROOT/pyproject.toml" \
    | sha256sum | cut -d' ' -f1)"
  if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "[setup] creating/updating the virtualenv at $VENV (first run: a few minutes)" >&2
    [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -r "$ROOT/requirements.txt" -r "$ACCEL_REQUIREMENTS"
    "$VENV/bin/python" -m pip install --quiet --no-deps -e "$ROOT"
    echo "$want" > "$stamp"
  fi
  export PATH="$VENV/bin:$PATH"
fi
export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error
# libtpu is installed for ahead-of-time compilation only: on this CPU machine JAX must not probe
# for a TPU at every start (set JAX_PLATFORMS yourself on a TPU VM or a GPU node).
export JAX_PLATFORMS="${JAX_PLATFORMS:-cpu}"
cd "$ROOT"
