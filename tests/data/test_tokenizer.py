"""The shipped tokenizer: fixed special ids, small, rebuilt identically, no <unk> on our text."""

import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from emollm_jax.data import chat_templates
from emollm_jax.data.mini import make_mini_emobench, make_tokenizer

SHIPPED = Path(__file__).resolve().parents[2] / "emollm_jax" / "assets" / "tokenizer"
FIXED_IDS = {
    "<unk>": 0,
    "<s>": 1,
    "</s>": 2,
    "<pad>": 3,
    "<image>": 4,
    "<|im_start|>": 5,
    "<|im_end|>": 6,
}


def test_shipped_tokenizer_ids_and_size():
    tok = AutoTokenizer.from_pretrained(str(SHIPPED), local_files_only=True)
    assert {t: tok.convert_tokens_to_ids(t) for t in FIXED_IDS} == FIXED_IDS
    assert (tok.unk_token_id, tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (0, 1, 2, 3)
    assert len(tok) <= 1024
    assert sum(p.stat().st_size for p in SHIPPED.iterdir()) < 200_000
    assert tok.chat_template == chat_templates.CHATML_JINJA


def test_mini_emobench_text_round_trips_without_unk(mini_dir, tokenizer):
    for split in ("train", "validation", "test"):
        for line in (mini_dir / f"{split}.jsonl").read_text().splitlines():
            record = json.loads(line)
            texts = [t["value"] for t in record["conversations"]] + [record["rationale"]]
            texts += record.get("options", [])
            for template in ("vicuna_v1", "chatml"):
                texts.append(chat_templates.render(record["conversations"], template).text)
            for text in texts:
                ids = tokenizer(text, add_special_tokens=False)["input_ids"]
                assert 0 not in ids, text
                assert tokenizer.decode(ids) == text


def test_rebuild_is_deterministic_and_keeps_ids(mini_dir, tmp_path):
    make_tokenizer.main([str(mini_dir), str(tmp_path / "a")])
    make_tokenizer.make_tokenizer(mini_dir, tmp_path / "b")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    tok = AutoTokenizer.from_pretrained(str(tmp_path / "a"), local_files_only=True)
    assert {t: tok.convert_tokens_to_ids(t) for t in FIXED_IDS} == FIXED_IDS


@pytest.mark.slow
def test_shipped_tokenizer_is_what_the_command_builds(tmp_path):
    """The committed folder equals a rebuild from the mini EmoBench it was made from (seed 0,
    2000/200/200 records: the default sizes before validation and test grew)."""
    data = make_mini_emobench.build(tmp_path / "data", sizes=make_tokenizer.CORPUS_SIZES)
    make_tokenizer.make_tokenizer(data, tmp_path / "tok")
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        assert (tmp_path / "tok" / name).read_bytes() == (SHIPPED / name).read_bytes()
