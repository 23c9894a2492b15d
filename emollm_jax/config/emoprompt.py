"""``config.emoprompt``: EmoPrompt, the data pipeline's prompt hook (``emollm_jax/emoprompt/``;
its texts in ``templates.py``)."""

from __future__ import annotations

import dataclasses

from emollm_jax.config.section import at_least_zero, fraction, one_of, option


@dataclasses.dataclass(frozen=True)
class EmoPromptConfig:
    guiding_prompts: bool = option(
        False, "append the task's cues and the exact answer format to instructions"
    )
    rationale_targets: bool = option(
        False, 'train on "<rationale>\\nAnswer: <label>" for records that have a rationale'
    )
    rationale_position: str = option(
        "before_answer",
        "where the rationale goes: before_answer or after_answer",
        one_of("before_answer", "after_answer"),
    )
    rationale_loss_weight: float = option(
        1.0,
        "loss weight of a rationale target's rationale tokens (its answer tokens weigh 1)",
        at_least_zero,
    )
    bare_label_fraction: float = option(
        0.0,
        "share of training records trained on the bare label even when they have a rationale "
        "(each record's lot fixed by data.seed and its id)",
        fraction,
    )
    rationales_file: str = option(
        "", "JSONL of {id, rationale} from `emollm annotate` ('' = the records' own)"
    )
