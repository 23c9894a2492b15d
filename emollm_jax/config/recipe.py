"""``config.recipe``: the main job's recipe (``emollm demo``): a grounding phase with EmoPrompt
off, then ``config.train`` from its weights. ``emollm train`` ignores this section."""

from __future__ import annotations

import dataclasses

from emollm_jax.config.section import at_least_zero, option


@dataclasses.dataclass(frozen=True)
class RecipeConfig:
    grounding_steps: int = option(
        0, "steps of bare-label training first, into <workdir>/grounding (0 = none)", at_least_zero
    )
    grounding_learning_rate: float = option(1e-3, "the grounding phase's peak learning rate")
    grounding_warmup_steps: int = option(20, "the grounding phase's warmup steps")
