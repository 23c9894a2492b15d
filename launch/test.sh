#!/usr/bin/env bash
# The test command: sets up ./.venv if needed, then runs the whole suite on CPU
# (8 fake devices; see tests/conftest.py). Extra arguments go to pytest.
source "$(dirname "$0")/env.sh"
exec python -m pytest -q -n "${PYTEST_WORKERS:-2}" --durations=15 "$@"
