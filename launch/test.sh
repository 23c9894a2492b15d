#!/usr/bin/env bash
# The test command: sets up ./.venv if needed, then runs the whole suite on CPU
# (8 fake devices; see tests/conftest.py). Extra arguments go to pytest.
# shellcheck source=launch/env.sh
source "$(dirname "$0")/env.sh"
# tests/launch/test_shellcheck.py needs shellcheck (Debian package): install it when apt-get can
# (root, package lists present); otherwise that test is skipped and says why.
if ! command -v shellcheck >/dev/null; then
  apt-get install -y -qq shellcheck >/dev/null 2>&1 \
    || echo "[setup] shellcheck not installed: tests/launch/test_shellcheck.py will skip" >&2
fi
exec python -m pytest -q -n "${PYTEST_WORKERS:-2}" --durations=15 "$@"
