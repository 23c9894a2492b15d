"""``config.eval``: evaluation (``emollm evaluate``; ``emollm_jax/inference/``). Prompts are
batched by the data pipeline's eval mode: ``data.eval_batch_size`` rows, lengths bucketed by
``data.seq_buckets``."""

from __future__ import annotations

import dataclasses

from emollm_jax.config.section import one_of, option

# A training run's weights to read: auto (the moving average where a checkpoint keeps one),
# params, ema (restore_model, the evaluation loader and the export).
WEIGHTS = ("auto", "params", "ema")


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    max_new_tokens: int = option(
        64, "tokens generated at most (room for a rationale and its Answer: line)"
    )
    temperature: float = option(0.0, "0: greedy; else sampling")
    top_k: int = option(0, "sampling: the k most likely tokens (0 = off)")
    top_p: float = option(1.0, "sampling: nucleus mass (1.0 = off)")
    seed: int = option(0, "sampling seed")
    stop_tokens: tuple = option(
        ("</s>", "<|im_end|>"), "tokens that end an answer besides the eos ids"
    )
    stop_strings: tuple = option(("USER:", "ASSISTANT:"), "strings the decoded answer is cut at")
    limit: int = option(0, "only the first `limit` records of the split (0 = all)")
    plots: bool = option(True, "confusion-matrix PNGs next to results.json")
    model_name: str = option(
        "", "row label of the results table ('' = the checkpoint folder's name, + @step)"
    )
    modes: tuple = option(
        ("generate", "likelihood"),
        "how answers are read: generate (free generation, parsed) and/or likelihood",
    )
    weights: str = option(
        "auto",
        "a training run's weights: auto (the moving average when the checkpoint keeps one, "
        "train.ema_decay; else the parameters), params, or ema",
        one_of(*WEIGHTS),
    )
    likelihood_norm: str = option(
        "none", "options compared by summed log-probability (none) or per token (tokens)"
    )
