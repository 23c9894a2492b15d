"""Generated token ids -> answer text: stop tokens, detokenisation and stop strings.

Our choices:

- Stop tokens are the model config's EOS ids plus named tokens (``config.eval.stop_tokens``,
  e.g. ``</s>`` and ChatML's ``<|im_end|>``) that the tokenizer knows as single tokens; a name
  the tokenizer lacks is ignored, so one config serves several templates.
- A row's text is the decoding of its tokens before the stop token (``lengths`` counts the stop
  token, ``finished`` says whether there was one), special tokens skipped.
- Stop strings cut the text at the earliest occurrence of any of them (the string itself is
  dropped): they end an answer that a model continues with a new turn ("USER:"). Inside the
  decoding loop a row already stops once its tokens end with a stop string's usual token ids
  (``stop_sequences``: the string alone, after a space, after a newline); a string tokenized
  some other way is still cut here, after the loop. Surrounding whitespace is stripped.
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


def stop_settings(tokenizer, eos_ids, stop_tokens, stop_strings) -> dict:
    """``GenerateConfig``'s ``eos_ids``, ``pad_id`` and ``stop_sequences`` for a tokenizer (the
    pad id falls back to the first stop token)."""
    eos = stop_token_ids(tokenizer, eos_ids, stop_tokens)
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        pad_id = eos[0] if eos else 0
    return {
        "eos_ids": eos,
        "pad_id": pad_id,
        "stop_sequences": stop_sequences(tokenizer, stop_strings),
    }


def stop_sequences(tokenizer, stop_strings: Iterable[str]) -> tuple[tuple[int, ...], ...]:
    """Token ids that spell each stop string as it usually appears: alone, after a space, after
    a newline (byte-level BPE merges the preceding space or newline into the first token).
    Decoding any of them gives text that holds the string, so a loop stopping on them never
    stops early."""
    seqs = set()
    for s in stop_strings:
        for text in (s, " " + s, "\n" + s) if s else ():
            ids = tuple(tokenizer.encode(text, add_special_tokens=False))
            if ids and s in tokenizer.decode(list(ids)):
                seqs.add(ids)
    return tuple(sorted(seqs))


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
