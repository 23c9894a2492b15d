"""EmoPrompt's entry into the data pipeline: a picklable ``record -> record`` prompt hook.

``make_prompt_hook(config, mode)`` reads ``config.emoprompt`` and returns the hook (or None when
EmoPrompt is off); the pipeline applies it to a copy of each record before the chat template.

- ``guiding_prompts``: the record's last instruction gains a line naming the task's cues and
  the exact answer format (``templates.py``).
- ``rationale_targets``: in training, a record with a ``rationale`` gets the target
  ``<rationale>\\nAnswer: <label>`` instead of the bare label, and its guiding prompt asks for
  that format; a record without one keeps the bare label and the plain format. In evaluation
  the prompt always asks for the rationale format (our choice: the model should reason the way
  it was trained to).
- ``rationale_position``: ``before_answer`` (the default: ``<rationale>\\nAnswer: <label>``) or
  ``after_answer`` (``Answer: <label>\\n<rationale>``); the guiding prompt asks for that order.
- ``rationale_loss_weight``: below (or above) 1, a rationale target's rationale text is named
  in the record's ``target_weights`` (``[(text, weight)]``), and the example encoder gives its
  tokens that loss weight; the answer line and the end-of-turn token keep weight 1.
- ``bare_label_fraction``: in training, this share of the records keeps the bare label (and
  the plain answer format) even when it has a rationale. Each record's lot is drawn from a
  hash of ``data.seed`` and its id: the same records every epoch and every run of a seed.
- ``rationales_file``: rationales from ``emollm annotate`` replace the
  records' own (a record absent from the file has none).

Records without a task (LLaVA-format instruction data) pass through unchanged.
"""

from __future__ import annotations

import hashlib

import emollm_jax.emoprompt.rationales as rationales_lib
import emollm_jax.emoprompt.templates as templates
from emollm_jax.data.data_config import check_local
from emollm_jax.data.example_encoder import PIPELINE_MODES
from emollm_jax.data.pipeline import resolve_path
from emollm_jax.errors import ConfigError
from emollm_jax.tasks import labels_for

FLAGS = ("guiding_prompts", "rationale_targets")


def last_turn(turns: list[dict], role: str, before: int | None = None) -> int | None:
    """Index of the last turn of ``role`` (before index ``before``), or None."""
    end = len(turns) if before is None else before
    return next((i for i in range(end - 1, -1, -1) if turns[i]["from"] == role), None)


def has_video(record: dict) -> bool:
    return any(item.get("type") == "video" for item in record.get("media") or ())


class EmoPromptHook:
    def __init__(
        self,
        *,
        guiding_prompts: bool,
        rationale_targets: bool,
        mode: str,
        rationales: dict[str, str] | None = None,
        rationale_position: str = "before_answer",
        rationale_loss_weight: float = 1.0,
        bare_label_fraction: float = 0.0,
        seed: int = 0,
    ):
        if mode not in PIPELINE_MODES:
            raise ValueError(f"mode must be one of {PIPELINE_MODES}, got {mode!r}")
        templates.check_position(rationale_position)
        self.rationale_position = rationale_position
        self.guiding_prompts = guiding_prompts
        self.rationale_targets = rationale_targets
        self.mode = mode
        self.rationales = rationales
        self.rationale_loss_weight = rationale_loss_weight
        self.bare_label_fraction = bare_label_fraction
        self.seed = seed

    @property
    def weights_targets(self) -> bool:
        """Whether training records may name ``target_weights`` (the encoder then emits
        ``loss_weights`` for every example)."""
        return self.mode == "train" and self.rationale_targets and self.rationale_loss_weight != 1

    def bare_label(self, record_id) -> bool:
        """Whether this record is trained on the bare label (its lot under ``seed``)."""
        if self.bare_label_fraction <= 0:
            return False
        digest = hashlib.sha256(f"{self.seed}:{record_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < self.bare_label_fraction

    def __call__(self, record: dict) -> dict:
        if self.rationales is not None:
            record["rationale"] = self.rationales.get(str(record["id"]))
        task = record.get("task")
        if task is None:
            return record
        turns = record["conversations"]
        answer_at = last_turn(turns, "gpt")
        asked_at = last_turn(turns, "human", before=answer_at)
        with_rationale = self.rationale_targets and bool(record.get("rationale"))
        if with_rationale and self.mode == "train" and self.bare_label(record["id"]):
            with_rationale = False
        reason = self.rationale_targets and (self.mode == "eval" or with_rationale)
        if self.guiding_prompts and asked_at is not None:
            guide = templates.guiding_prompt(
                task,
                labels_for(task, record.get("options")),
                has_video=has_video(record),
                reason=reason,
                position=self.rationale_position,
            )
            turn = turns[asked_at]
            turns[asked_at] = {**turn, "value": f"{turn['value'].rstrip()}\n{guide}"}
        if self.mode == "train" and with_rationale and answer_at is not None:
            target = templates.rationale_target(
                record["rationale"], record["answer"], self.rationale_position
            )
            turns[answer_at] = {**turns[answer_at], "value": target}
            if self.weights_targets:
                record["target_weights"] = [
                    (record["rationale"].strip(), self.rationale_loss_weight)
                ]
        return record


def check_emoprompt_config(e) -> None:
    """Start-up checks of ``config.emoprompt``; a bad field fails with its name."""
    for name in FLAGS:
        if not isinstance(e[name], bool):
            raise ConfigError(
                f"emoprompt.{name}", f"expected a bool, got {e[name]!r}", value=e[name]
            )
    position = e.get("rationale_position", "before_answer")
    if position not in templates.RATIONALE_POSITIONS:
        raise ConfigError(
            "emoprompt.rationale_position",
            f"{position!r} not in {templates.RATIONALE_POSITIONS}",
            value=position,
        )
    weight, share = e.get("rationale_loss_weight", 1.0), e.get("bare_label_fraction", 0.0)
    if not weight >= 0:
        raise ConfigError(
            "emoprompt.rationale_loss_weight", f"{weight!r}, expected >= 0", value=weight
        )
    if not 0 <= share <= 1:
        raise ConfigError(
            "emoprompt.bare_label_fraction", f"{share!r}, expected between 0 and 1", value=share
        )
    path = e.rationales_file
    if not isinstance(path, str):
        raise ConfigError("emoprompt.rationales_file", f"expected a path, got {path!r}", value=path)
    check_local("emoprompt.rationales_file", path)
    if path and not resolve_path(path).is_file():
        raise ConfigError("emoprompt.rationales_file", f"{path} is not a file", value=path)


def make_prompt_hook(config, mode: str) -> EmoPromptHook | None:
    """The hook ``config.emoprompt`` asks for in ``mode`` (train | eval), or None when off."""
    e = config.get("emoprompt") if hasattr(config, "get") else None
    if e is None:
        return None
    check_emoprompt_config(e)
    if not (e.guiding_prompts or e.rationale_targets):
        return None
    table = rationales_lib.read(resolve_path(e.rationales_file)) if e.rationales_file else None
    return EmoPromptHook(
        guiding_prompts=e.guiding_prompts,
        rationale_targets=e.rationale_targets,
        mode=mode,
        rationales=table,
        rationale_position=e.get("rationale_position", "before_answer"),
        rationale_loss_weight=e.get("rationale_loss_weight", 1.0),
        bare_label_fraction=e.get("bare_label_fraction", 0.0),
        seed=(config.get("data") or {}).get("seed", 0),
    )
