"""Build the project's small tokenizer from an EmoBench-format folder's text.

    emollm data tokenizer DATA_DIR OUT_DIR

No tokenizer can be downloaded here, so we train one: byte-level BPE (so that no text is ever
``<unk>``) with 1024 entries in all, the tiny configs' ``vocab_size``. The training text is every
record's instruction, answer, options and rationale, each record rendered once with each chat
template so that the template words (Vicuna's system line, ``USER:``, ChatML roles) become
single tokens. Fixed special ids (other modules rely on them)::

    <unk>=0 <s>=1 </s>=2 <pad>=3 <image>=4 <|im_start|>=5 <|im_end|>=6

The shipped tokenizer (``emollm_jax/assets/tokenizer``) was trained on a seed-0 mini EmoBench
of ``CORPUS_SIZES`` records (the mini EmoBench's default sizes when it was made; they have grown
since, and a tokenizer trained on other text would renumber tokens and void every checkpoint)::

    emollm data mini DIR --train 2000 --validation 200 --test 200
    emollm data tokenizer DIR emollm_jax/assets/tokenizer

The folder is a transformers ``PreTrainedTokenizerFast`` (called ``TokenizersBackend`` in
transformers 5; ``AutoTokenizer.from_pretrained`` loads it offline) whose own ``chat_template`` is ChatML. It adds no bos/eos by itself: the
pipeline adds bos when the chat template asks for it. Same input, same files.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterator
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from emollm_jax.data import chat_templates

SPECIAL_TOKENS = ("<unk>", "<s>", "</s>", "<pad>", "<image>", "<|im_start|>", "<|im_end|>")
VOCAB_SIZE = 1024
SPLIT_FILES = ("train.jsonl", "validation.jsonl", "test.jsonl")
# Records per split of the mini EmoBench the shipped tokenizer was trained on.
CORPUS_SIZES = {"train": 2000, "validation": 200, "test": 200}


def corpus(data_dir: str | Path) -> Iterator[str]:
    """The training text: per record, both templated renderings plus options and rationale."""
    for name in SPLIT_FILES:
        path = Path(data_dir) / name
        if not path.exists():
            continue
        for line in path.read_bytes().splitlines():
            try:
                record = json.loads(line.decode("utf-8-sig"))
                conversations = list(record["conversations"])
            except (UnicodeDecodeError, ValueError, KeyError, TypeError):
                continue  # the pipeline's reader reports bad lines; here they add no text
            for template in ("vicuna_v1", "chatml"):
                yield from _SPECIALS_RE.split(chat_templates.render(conversations, template).text)
            yield " ".join(str(o) for o in record.get("options") or ())
            yield str(record.get("rationale") or "")
            yield str(record.get("answer") or "")


# At encoding time the special tokens cut the text into pieces that are pre-tokenized apart;
# training on the same pieces makes e.g. "system" after "<|im_start|>" one token.
_SPECIALS_RE = re.compile("|".join(re.escape(t) for t in SPECIAL_TOKENS))


def train(data_dir: str | Path) -> Tokenizer:
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
        show_progress=False,
    )
    tok.train_from_iterator(corpus(data_dir), trainer=trainer)
    for i, token in enumerate(SPECIAL_TOKENS):
        assert tok.token_to_id(token) == i, f"{token} must have id {i}"
    return tok


def make_tokenizer(data_dir: str | Path, out_dir: str | Path):
    """Train on ``data_dir`` and save a transformers tokenizer folder at ``out_dir``."""
    from transformers import PreTrainedTokenizerFast

    hf = PreTrainedTokenizerFast(
        tokenizer_object=train(data_dir),
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        extra_special_tokens=list(SPECIAL_TOKENS[4:]),
        model_max_length=VOCAB_SIZE,
        chat_template=chat_templates.CHATML_JINJA,
        clean_up_tokenization_spaces=False,
    )
    hf.save_pretrained(str(out_dir))
    return hf


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir")
    parser.add_argument("out_dir")
    args = parser.parse_args(argv)
    hf = make_tokenizer(args.data_dir, args.out_dir)
    size = sum(p.stat().st_size for p in Path(args.out_dir).iterdir())
    print(f"wrote a {len(hf)}-token tokenizer ({size / 1e3:.0f} kB) to {args.out_dir}")


if __name__ == "__main__":
    main()
