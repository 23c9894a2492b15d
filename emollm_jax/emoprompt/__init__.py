"""EmoPrompt: guiding prompts, rationale targets, and rationales written by a teacher.

The paper says EmoPrompt "guides MLLMs to reason about emotions in the correct direction" and
does not publish the mechanism; ours is:

- ``templates.py``: every text (per-task cues, answer formats, the rationale target, the
  teacher's instruction), in one file;
- ``hook.py``: the data pipeline's prompt hook built from ``config.emoprompt``;
- ``rationales.py``: the check that a teacher's rationale ends in the ground-truth label.

The teacher's run that writes rationales for a split (``emollm annotate``) runs a model, so it
lives with the other runs: ``emollm_jax.inference.annotate``.
"""

from emollm_jax.emoprompt.hook import EmoPromptHook, make_prompt_hook


def hook_from_config(config, mode: str = "train"):
    """The prompt hook ``config.emoprompt`` asks for (None when EmoPrompt is off)."""
    return make_prompt_hook(config, mode)


__all__ = ["EmoPromptHook", "hook_from_config", "make_prompt_hook"]
