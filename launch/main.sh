#!/usr/bin/env bash
# The main job: set up ./.venv if needed, build the mini EmoBench, train the tiny full EmoLLM on
# CPU, evaluate it on the test split and print the EmoBench table.
# Extra arguments go to `emollm demo` (e.g. --config.train.steps=100).
# shellcheck source=launch/env.sh
source "$(dirname "$0")/env.sh"
exec emollm demo "$@"
