"""Option-likelihood scoring of EmoBench's closed-answer sub-tasks: the pure part (no JAX).

The options' continuations are built and scored by ``emollm_jax.inference.likelihood_run``.

For a record of close-set emotion, intent, hate, humor or sarcasm, every option becomes one
continuation of the evaluation prompt, and the model's answer is the option whose continuation
is most likely under the model: no decoding and no parsing, so a reply the parser cannot read
never passes for a wrong answer (both modes are reported side by side). Open-set emotion lists
no options in its instruction and is left to generation. Our choices:

- The continuation is the assistant turn the model was trained to give with that option as
  its answer, rendered by the same chat template with its end-of-turn token (`` joy</s>`` for
  Vicuna): the score is the probability of answering exactly that option and stopping, and an
  option whose tokens begin another's cannot win by being shorter. A model trained with
  EmoPrompt's rationale before the answer is scored on ``Answer: <option></s>`` after its own
  greedy rationale (generated until the ``Answer:`` marker; the rationale and the marker are
  context, not scored), where training put the answer line; a record whose rationale never
  reaches the marker within ``eval.max_new_tokens`` is counted and left out, not scored after
  a rationale it did not finish. With the rationale after the answer
  (``emoprompt.rationale_position="after_answer"``) the answer line is what the model was
  trained to say first: ``Answer: <option>`` right after the prompt, the end-of-turn token not
  scored (a newline and the rationale follow it in training). Results and tables name the form
  (``emollm_jax.inference.likelihood_run.FORMS``).
- Score: as lm-eval-harness does for multiple choice, the SUM of the continuation tokens'
  log-probabilities. Not length-normalised by default (``config.eval.likelihood_norm="none"``):
  the options here are one- or two-token labels plus the same end token, so lengths barely
  differ, and the sum is the probability of the whole answer; normalising (``"tokens"``: mean
  log-probability per token) would favour labels split into several tokens whose later pieces
  are near-certain once the first is chosen. Both the sums and the token counts are stored in
  every row, so either choice can be recomputed from ``predictions.jsonl``.
- Ties go to the earlier option (the record's own order).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import numpy as np

from emollm_jax.tasks import YES_NO_TASKS

LIKELIHOOD_TASKS: tuple[str, ...] = ("emotion_closed", "intent", *YES_NO_TASKS)
NORMS = ("none", "tokens")
SUBDIR = "likelihood"  # the sub-folder of an evaluation folder its files go to
# The evaluation modes (``config.eval.modes``): free generation with parsed answers, and this one.
EVAL_MODES = ("generate", "likelihood")


def option_score(logprob: float, tokens: int, norm: str) -> float:
    """What options are compared on: the summed log-probability, or its mean per token."""
    if norm == "none":
        return logprob
    if norm == "tokens":
        return logprob / tokens if tokens else -math.inf
    raise ValueError(f"likelihood_norm must be one of {NORMS}, got {norm!r}")


def choose(logprobs: Sequence[float], tokens: Sequence[int], norm: str = "none") -> int:
    """Index of the best option (the first one on a tie)."""
    if not logprobs or len(logprobs) != len(tokens):
        raise ValueError(f"need one token count per option: {len(logprobs)} vs {len(tokens)}")
    scores = [option_score(lp, n, norm) for lp, n in zip(logprobs, tokens)]
    return max(range(len(scores)), key=lambda i: (scores[i], -i))


def likelihood_row(
    meta: dict, logprobs: Sequence[float], tokens: Sequence[int], norm: str, step: int | None
) -> dict:
    """A prediction row (the fields ``compute_metrics`` reads, plus every option's score)."""
    options = list(meta["options"])
    return {
        "id": meta["id"],
        "task": meta["task"],
        "parsed": options[choose(logprobs, tokens, norm)],
        "gold": meta["answer"],
        "options": options,
        "logprobs": [float(x) for x in logprobs],
        "tokens": [int(n) for n in tokens],
        "norm": norm,
        "checkpoint_step": step,
    }
