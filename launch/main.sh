#!/usr/bin/env bash
# The main job: set up ./.venv if needed, build the mini EmoBench, train a tiny model on CPU.
# Extra arguments go to the training command (e.g. --config.train.steps=100).
source "$(dirname "$0")/env.sh"
DATA="${EMOLLM_DATA:-data/mini_emobench}"
RUN="${EMOLLM_RUN:-runs/main}"
if [ ! -f "$DATA/test.jsonl" ]; then
  python -m emollm_jax.data.make_mini_emobench "$DATA"
fi
python -m emollm_jax.train --config configs/llava_tiny.py --workdir "$RUN" \
  --config.data.dir="$DATA" "$@"
echo "main job: trained; see $RUN/metrics.jsonl (evaluation is not wired in yet)"
