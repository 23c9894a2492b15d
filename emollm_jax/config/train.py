"""``config.train``: the training loop (``emollm_jax/train/``). Checks against the model and the
devices (heads over the tensor axis, the batch over the batch axes) stay in
``emollm_jax/train/validate.py``."""

from __future__ import annotations

import dataclasses

from emollm_jax.config.section import at_least_zero, option, positive
from emollm_jax.errors import ConfigError


def _decay(field: str, value: float) -> None:
    if not 0 <= value < 1:
        raise ConfigError(field, value=value, expected="at least 0 and below 1")


@dataclasses.dataclass(frozen=True)
class ProfileConfig:
    start_step: int = option(3, "first profiled step (counted from 1)")
    num_steps: int = option(0, "steps traced under <workdir>/tensorboard (0 = off)", at_least_zero)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    steps: int = option(300, "optimizer steps of the run")
    stage: int = option(
        2, "1: only the projector learns; 2: projector + LLM (+ vision with train_vision)"
    )
    train_vision: bool = option(False, "stage 2 trains the vision encoder too")
    learning_rate: float = option(1e-3, "peak learning rate")
    warmup_steps: int = option(20, "linear warmup steps", at_least_zero)
    end_lr_ratio: float = option(0.1, "cosine decay ends at learning_rate * end_lr_ratio")
    b1: float = option(0.9, "AdamW beta1")
    b2: float = option(0.999, "AdamW beta2")
    eps: float = option(1e-8, "AdamW epsilon")
    weight_decay: float = option(0.0, "decoupled weight decay on matrices only", at_least_zero)
    grad_clip_norm: float = option(1.0, "global gradient norm clip")
    grad_accum_steps: int = option(1, "microbatches per step, accumulated inside the step")
    loss_chunk: int = option(
        0, "loss over this many positions at a time from the hidden states (0 = full logits)"
    )
    ema_decay: float = option(
        0.0,
        "an exponential moving average of the learning parameters, kept beside them with this "
        "decay, warmed up as min(decay, (1 + step) / (10 + step)); 0 = off. Evaluation and "
        "export read it (eval.weights); train.init_from continues from the parameters",
        _decay,
    )
    max_consecutive_nonfinite: int = option(
        5, "skipped non-finite updates in a row that stop the run", positive
    )
    init_from: str = option(
        "", "initial weights: a Hugging Face folder or an Orbax run of this model ('' = random)"
    )
    init_vision_from: str = option("", "a CLIP vision tower's Hugging Face folder")
    vision_seed: int = option(
        -1,
        "seed of a fresh vision tower (-1 = config.seed): a fixed one stands in for a pretrained "
        "tower, the same in every run",
    )
    init_llm_from: str = option("", "an LLM's Hugging Face folder")
    llm_seed: int = option(
        -1,
        "seed of a fresh language model in a LLaVA model (-1 = config.seed): a fixed one stands in "
        "for a pretrained LLM, the same in every run",
    )
    profile: ProfileConfig = option(ProfileConfig(), "a jax.profiler trace of some steps")
    resume_step: int = option(
        -1, "resume from this checkpoint step instead of the latest (-1); later ones moved aside"
    )
    compile_cache_dir: str = option(
        "", "persistent compilation cache: '' = $JAX_COMPILATION_CACHE_DIR or <workdir>/"
        "compile_cache; a folder or gs:// / s3:// URL; off",
    )  # fmt: skip
    hang_timeout_s: float = option(
        0.0, "no step finished for this long: stacks dumped, exit 75 (0 = 20x the median step)",
        at_least_zero,
    )  # fmt: skip
    hang_first_step_timeout_s: float = option(
        3600.0, "the same for the compile and the first steps", positive
    )
