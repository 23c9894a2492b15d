# Sourced by the launch scripts: creates and fills ./.venv when it is missing or stale.
# Re-installs only when requirements*.txt or pyproject.toml changed (a stamp records their hash).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${EMOLLM_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
stamp="$VENV/.requirements.sha256"
want="$(sha256sum "$ROOT/requirements.txt" "$ROOT/requirements-tpu.txt" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[setup] creating/updating the virtualenv at $VENV (first run: a few minutes)" >&2
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -r "$ROOT/requirements.txt" -r "$ROOT/requirements-tpu.txt"
  "$VENV/bin/python" -m pip install --quiet --no-deps -e "$ROOT"
  echo "$want" > "$stamp"
fi
export PATH="$VENV/bin:$PATH"
export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error
# libtpu is installed for ahead-of-time compilation only: on this CPU machine JAX must not probe
# for a TPU at every start (set JAX_PLATFORMS yourself on a TPU VM).
export JAX_PLATFORMS="${JAX_PLATFORMS:-cpu}"
cd "$ROOT"
