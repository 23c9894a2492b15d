"""Generated token ids -> answer text: stop tokens, detokenisation and stop strings.

Our choices:

- Stop tokens are the model config's EOS ids plus named tokens (``config.eval.stop_tokens``,
  e.g. ``</s>`` and ChatML's ``<|im_end|>``) that the tokenizer knows as single tokens; a name
  the tokenizer lacks is ignored, so one config serves several templates.
- A row's text is the decoding of its tokens before the stop token (``lengths`` counts the stop
  token, ``finished`` says whether there was one), special tokens skipped.
- Stop strings cut the text at the earliest occurrence of any of them (the string itself is
  dropped): they end an answer that a model continues with a new turn ("USER:") although the
  loop could not see it. Surrounding whitespace is stripped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


def stop_token_ids(tokenizer, eos_ids: Iterable[int] = (), names: Iterable[str] = ()) -> tuple:
    """``eos_ids`` plus the ids of the token ``names`` the tokenizer has, sorted, unique."""
    ids = set(int(i) for i in eos_ids)
    vocab = tokenizer.get_vocab()
    ids.update(vocab[name] for name in names if name in vocab)
    return tuple(sorted(ids))


def truncate_at_stop(text: str, stop_strings: Sequence[str]) -> str:
    """``text`` up to the earliest stop string (exclusive), whitespace-stripped."""
    cut = min((i for i in (text.find(s) for s in stop_strings if s) if i >= 0), default=len(text))
    return text[:cut].strip()


def answer_ids(tokens: np.ndarray, length: int, finished: bool) -> list[int]:
    """One row's generated ids without the stop token and the padding after it."""
    return [int(t) for t in tokens[: length - 1 if finished else length]]


def decode_answers(
    tokenizer,
    tokens: np.ndarray,
    lengths: np.ndarray,
    finished: np.ndarray,
    stop_strings: Sequence[str] = (),
) -> list[str]:
    """The answer text of every row of a ``GenerateOutput`` (host arrays)."""
    rows = [answer_ids(t, int(n), bool(f)) for t, n, f in zip(tokens, lengths, finished)]
    texts = tokenizer.batch_decode(rows, skip_special_tokens=True)
    return [truncate_at_stop(text, stop_strings) for text in texts]
