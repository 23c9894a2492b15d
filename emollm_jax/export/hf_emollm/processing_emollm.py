"""The processor of an exported EmoLLM: text with ``<image>`` / ``<video>`` placeholders and
media in, the model's inputs out, as emollm_jax's data pipeline makes them.

- Images and video frames go through the folder's CLIP image processor (shortest side resized
  bicubically, centre crop, rescale, normalise).
- A video (a sequence of frames: PIL images or a uint8 array ``[T, H, W, 3]``) is cut to
  ``num_frames`` frames picked uniformly: indices ``round(linspace(0, T - 1, num_frames))``.
- Placeholders: ``<video>`` takes the next video; ``<image>`` the next image, or the next video
  when no image is left, since data sets in LLaVA's format (EmoBench's records among them) mark
  every medium ``<image>``. The chat template writes ``{"type": "image"}`` as ``<image>`` and
  ``{"type": "video"}`` as ``<video>``, each followed by a newline as the records have it.
- Each placeholder becomes that many image tokens: ``tokens_per_image`` for an image; for a
  video of F frames, ``F * tokens_per_image`` (``video_mode="frames"``) or
  ``video_shared_tokens + F * video_frame_tokens`` (``"pooled"``).
- Text between placeholders is tokenized piece by piece without special tokens, and the bos
  token is prepended when ``add_bos`` is set (as the pipeline does for the Vicuna template).

Output: ``input_ids`` and ``attention_mask`` (left-padded rows); with images only,
``pixel_values [images, C, H, W]`` (in placeholder order over the batch); with a video,
``pixel_values [batch, frames, C, H, W]`` and ``frame_media [batch, frames]`` (each frame's media
index in its row, -1 on padding frames).

Copied into every exported EmoLLM folder; it needs only transformers, torch, numpy and Pillow.
"""

from __future__ import annotations

import re

import numpy as np
import torch
from transformers import BatchFeature
from transformers.processing_utils import ProcessorMixin


def uniform_indices(total: int, num_frames: int) -> np.ndarray:
    return np.round(np.linspace(0, total - 1, num_frames)).astype(np.int64)


def _ndim(x) -> int:
    """3 for one image (PIL or [H, W, C]); 4 for one video (frames list or [T, H, W, C])."""
    if hasattr(x, "getbands"):  # a PIL image
        return 3
    if isinstance(x, (list, tuple)):
        return 1 + (_ndim(x[0]) if x else 0)
    return np.ndim(x)


def _listed(media, item_ndim: int) -> list:
    """The media items in order: one item alone, a list of them, or a list of per-prompt lists
    (as ``apply_chat_template(tokenize=True)`` passes them)."""
    if media is None or (isinstance(media, (list, tuple)) and not media):
        return []
    if _ndim(media) <= item_ndim:
        return [media]
    if _ndim(media) == item_ndim + 1 and not isinstance(media, (list, tuple)):
        return list(media)
    return [item for group in media for item in _listed(group, item_ndim)]


class EmoLLMProcessor(ProcessorMixin):
    def __init__(
        self,
        image_processor=None,
        tokenizer=None,
        chat_template=None,
        image_token="<image>",
        video_token="<video>",
        tokens_per_image=1,
        video_mode="frames",
        video_shared_tokens=0,
        video_frame_tokens=1,
        num_frames=8,
        add_bos=True,
        **kwargs,
    ):
        self.image_token = image_token
        self.video_token = video_token
        self.tokens_per_image = tokens_per_image
        self.video_mode = video_mode
        self.video_shared_tokens = video_shared_tokens
        self.video_frame_tokens = video_frame_tokens
        self.num_frames = num_frames
        self.add_bos = add_bos
        super().__init__(image_processor, tokenizer, chat_template=chat_template)
        self.image_token_id = self.tokenizer.convert_tokens_to_ids(image_token)

    def media_tokens(self, frames: int, is_video: bool) -> int:
        """Image tokens of one media item of ``frames`` frames."""
        if not is_video or self.video_mode == "frames" or frames == 1:
            return frames * self.tokens_per_image
        return self.video_shared_tokens + frames * self.video_frame_tokens

    def sample_frames(self, video) -> list:
        frames = list(video)
        if not frames:
            raise ValueError("a video has no frames")
        return [frames[i] for i in uniform_indices(len(frames), self.num_frames)]

    def _pixels(self, frames: list) -> np.ndarray:
        out = self.image_processor(frames, return_tensors="np")["pixel_values"]
        return np.asarray(out, np.float32)

    def _row(self, text: str, images, videos):
        """One prompt: its ids and its media's frames (placeholder order)."""
        pattern = f"({re.escape(self.image_token)}|{re.escape(self.video_token)})"
        ids = [self.tokenizer.bos_token_id] if self.add_bos else []
        media = []  # (frames [F, C, H, W], is_video)
        for piece in re.split(pattern, text):
            if piece in (self.image_token, self.video_token):
                is_video = piece == self.video_token or not images
                source = videos if is_video else images
                if not source:
                    raise ValueError(f"more {piece} placeholders than media given")
                item = source.pop(0)
                frames = self._pixels(self.sample_frames(item) if is_video else [item])
                ids += [self.image_token_id] * self.media_tokens(len(frames), is_video)
                media.append((frames, is_video))
            elif piece:
                ids += self.tokenizer(piece, add_special_tokens=False)["input_ids"]
        return ids, media

    def __call__(self, text=None, images=None, videos=None, return_tensors="pt", **kwargs):
        if text is None:
            raise ValueError(
                "EmoLLMProcessor needs text with one placeholder per medium (<image> for an "
                "image, <video> for a video), e.g. processor.apply_chat_template([{'role': "
                "'user', 'content': [{'type': 'image'}, {'type': 'text', 'text': question}]}], "
                "add_generation_prompt=True, tokenize=False), then processor(text=prompt, "
                "images=[image])"
            )
        texts = [text] if isinstance(text, str) else list(text)
        images = _listed(images, item_ndim=3)  # one image alone, or a list of them
        videos = _listed(videos, item_ndim=4)  # one video (frames list or array), or a list
        rows = [self._row(t, images, videos) for t in texts]
        if images or videos:
            raise ValueError(f"{len(images)} image(s) and {len(videos)} video(s) had no placeholder")
        length = max(len(ids) for ids, _ in rows)
        pad = self.tokenizer.pad_token_id or 0
        input_ids = np.full((len(rows), length), pad, np.int64)
        mask = np.zeros((len(rows), length), np.int64)
        for b, (ids, _) in enumerate(rows):
            input_ids[b, length - len(ids) :] = ids
            mask[b, length - len(ids) :] = 1
        data = {"input_ids": input_ids, "attention_mask": mask}
        all_media = [m for _, media in rows for m in media]
        if all_media and not any(is_video for _, is_video in all_media):
            data["pixel_values"] = np.concatenate([frames for frames, _ in all_media])
        elif all_media:
            per_row = [sum(len(f) for f, _ in media) for _, media in rows]
            shape = all_media[0][0].shape[1:]
            pixels = np.zeros((len(rows), max(per_row), *shape), np.float32)
            frame_media = np.full((len(rows), max(per_row)), -1, np.int64)
            for b, (_, media) in enumerate(rows):
                f = 0
                for m, (frames, _) in enumerate(media):
                    pixels[b, f : f + len(frames)] = frames
                    frame_media[b, f : f + len(frames)] = m
                    f += len(frames)
            data |= {"pixel_values": pixels, "frame_media": frame_media}
        if return_tensors == "pt":
            data = {k: torch.from_numpy(v) for k, v in data.items()}
        return BatchFeature(data)

    def batch_decode(self, *args, **kwargs):
        return self.tokenizer.batch_decode(*args, **kwargs)

    def decode(self, *args, **kwargs):
        return self.tokenizer.decode(*args, **kwargs)


__all__ = ["EmoLLMProcessor"]
