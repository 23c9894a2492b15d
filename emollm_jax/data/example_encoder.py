"""One normalised record -> one example's arrays: template, tokens, expanded images, labels, pixels.

Steps (in this order): the optional ``prompt_hook`` (EmoPrompt's entry point: it receives a copy
of the record and returns the record to template, e.g. with guiding prompts added to the human
turn or a rationale added to the gpt turn) -> chat template (``chat_templates.py``) -> tokenize
each text piece without special-token insertion (bos is prepended when the template asks) ->
each ``<image>`` placeholder becomes ``tokens_per_media(...)`` copies of the model's
``image_token_id``, one contiguous span per media item -> labels copy the ids of target segments
and are -100 elsewhere (the loss shifts them) -> media decoded (``media.py``) and CLIP-
preprocessed (``clip_preprocess.py``).

Train mode returns ``input_ids, labels`` (int32 [L]), ``pixel_values`` (float32 [n, C, H, W])
and ``frame_media`` (int32 [n], the media index of each frame); with ``loss_weights=True`` also
``loss_weights`` (float32 [L]): 0 off the targets, 1 on them, except target tokens that overlap
a text the record's ``target_weights`` (``[(text, weight)]``, set by the prompt hook) names,
which get that weight (located by the fast tokenizer's character offsets). Eval mode returns
the prompt's ``input_ids``, the same pixel arrays, and ``meta`` = ``{id, task, answer, options, prompt}``
(``options`` are the labels the answer is scored against; ``prompt`` the templated text with
placeholders unexpanded). A bad record returns None after ``BadInputLog.skip``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import numpy as np

from emollm_jax.config.model import ModelConfig
from emollm_jax.data import chat_templates, clip_preprocess
from emollm_jax.data import media as media_lib
from emollm_jax.data.bad_input import BadInputLog, BadRecord
from emollm_jax.data.records import PLACEHOLDER
from emollm_jax.models.visual_tokens import tokens_per_media
from emollm_jax.tasks import labels_for

IGNORE = -100
PIPELINE_MODES = ("train", "eval")  # what a record is encoded for


class ExampleEncoder:
    """Callable ``record -> dict | None``; picklable, so Grain workers can run it."""

    def __init__(
        self,
        tokenizer,
        model_cfg: ModelConfig,
        *,
        chat_template: str,
        video_frames: int,
        max_len: int,
        max_frames: int,
        max_pixels: int,
        mode: str = "train",
        prompt_hook: Callable[[dict], dict] | None = None,
        bad: BadInputLog | None = None,
        loss_weights: bool = False,
    ):
        if mode not in PIPELINE_MODES:
            raise ValueError(f"mode must be one of {PIPELINE_MODES}, got {mode!r}")
        if chat_template not in chat_templates.TEMPLATES:
            raise ValueError(f"chat_template {chat_template!r} not in {chat_templates.TEMPLATES}")
        self.tokenizer = tokenizer
        self.model_cfg = model_cfg
        self.chat_template = chat_template
        self.video_frames = video_frames
        self.max_len = max_len
        self.max_frames = max_frames
        self.max_pixels = max_pixels
        self.mode = mode
        self.prompt_hook = prompt_hook
        self.loss_weights = loss_weights and mode == "train"
        self.bad = bad or BadInputLog(f"{mode} pipeline")

    def __call__(self, record: dict) -> dict | None:
        try:
            out = self.encode(record)
        except BadRecord as e:
            self.bad.skip(record["id"], e)
            self.bad.log_summary()  # a running summary, rate-limited
            return None
        self.bad.accept()
        return out

    def encode(self, record: dict) -> dict:
        if self.prompt_hook is not None:
            record = self.prompt_hook(copy.deepcopy(record))
        prompt_only = self.mode == "eval"
        rendered = chat_templates.render(
            record["conversations"], self.chat_template, self.tokenizer, prompt_only=prompt_only
        )
        items = record["media"]
        weighted = (record.get("target_weights") or ()) if self.loss_weights else None
        input_ids, labels, weights = self._tokens(rendered, items, weighted)
        if len(input_ids) > self.max_len:
            raise BadRecord("too_long", f"{len(input_ids)} tokens > {self.max_len}")
        pixel_values, frame_media = self._pixels(items)
        out = {
            "input_ids": np.asarray(input_ids, np.int32),
            "pixel_values": pixel_values,
            "frame_media": frame_media,
        }
        if prompt_only:
            task = record["task"]
            out["meta"] = {
                "id": record["id"],
                "task": task,
                "answer": record["answer"],
                "options": list(labels_for(task, record["options"])) if task else None,
                "prompt": rendered.text,
            }
        else:
            out["labels"] = np.asarray(labels, np.int32)
            if weights is not None:
                out["loss_weights"] = np.asarray(weights, np.float32)
        return out

    def _tokens(self, rendered: chat_templates.Rendered, items: list[dict], weighted=None):
        """(ids, labels, weights): weights None unless ``weighted`` (``[(text, weight)]``)."""
        # Cut every segment at its placeholders; tokenize all text pieces in one call.
        pieces: list[tuple[str, bool]] = []  # (text, is_target), None text = a placeholder
        for text, is_target in rendered.segments:
            parts = text.split(PLACEHOLDER)
            for k, part in enumerate(parts):
                if k:
                    pieces.append((None, False))
                if part:
                    pieces.append((part, is_target))
        texts = [t for t, _ in pieces if t is not None]
        with_offsets = weighted is not None
        found = {"input_ids": [], "offset_mapping": []}
        if texts:
            found = self.tokenizer(
                texts, add_special_tokens=False, return_offsets_mapping=with_offsets
            )
        encoded = iter(found["input_ids"])
        offsets = iter(found["offset_mapping"] if with_offsets else [])
        unplaced = {text for text, _ in weighted or ()}
        n_placeholders = sum(1 for t, _ in pieces if t is None)
        if n_placeholders != len(items):
            raise BadRecord(
                "placeholder_mismatch", f"{n_placeholders} placeholders for {len(items)} media"
            )
        bos = self.tokenizer.bos_token_id
        ids: list[int] = [bos] if rendered.bos and bos is not None else []
        labels: list[int] = [IGNORE] * len(ids)
        weights: list[float] = [0.0] * len(ids)
        media_iter = iter(items)
        for text, is_target in pieces:
            if text is None:
                item = next(media_iter)
                n = tokens_per_media(self.model_cfg, item["type"], self._frames(item["type"]))
                ids += [self.model_cfg.image_token_id] * n
                labels += [IGNORE] * n
                weights += [0.0] * n
                continue
            piece = next(encoded)
            ids += piece
            labels += piece if is_target else [IGNORE] * len(piece)
            if not with_offsets:
                continue
            spans = next(offsets)
            if not is_target:
                weights += [0.0] * len(piece)
                continue
            own = [1.0] * len(piece)
            for part, weight in weighted:
                at = text.find(part)
                if at < 0:
                    continue
                unplaced.discard(part)
                for k, (start, end) in enumerate(spans):
                    if start < at + len(part) and end > at:
                        own[k] = float(weight)
            weights += own
        if unplaced:
            raise ValueError(f"target_weights name text not in the targets: {sorted(unplaced)}")
        return ids, labels, (weights if with_offsets else None)

    def _frames(self, media_type: str) -> int:
        return self.video_frames if media_type == "video" else 1

    def _pixels(self, items: list[dict]) -> tuple[np.ndarray, np.ndarray]:
        vision = self.model_cfg.vision
        size = vision.image_size
        n_frames = sum(self._frames(item["type"]) for item in items)
        if n_frames > self.max_frames:
            raise BadRecord("too_many_frames", f"{n_frames} frames > {self.max_frames}")
        chunks, owners = [], []
        for k, item in enumerate(items):
            data = item.get("bytes")
            if data is None:
                try:
                    data = Path(item["path"]).read_bytes()
                except OSError as e:
                    raise BadRecord("missing_media", f"{item['path']}: {e}") from e
            frames = media_lib.decode(
                item["type"], data, num_frames=self.video_frames, max_pixels=self.max_pixels
            )
            chunks.append(
                clip_preprocess.preprocess(frames, size, vision.image_mean, vision.image_std)
            )
            owners.append(np.full(len(frames), k, np.int32))
        if not chunks:
            return np.zeros((0, vision.num_channels, size, size), np.float32), np.zeros(0, np.int32)
        return np.concatenate(chunks), np.concatenate(owners)
