"""Each source's documented layout (tiny, made by code) -> EmoBench records -> the Grain pipeline:
records, labels, options, media and instructions as expected, every bad row counted by reason,
strict mode, determinism, atomic output and the command line."""

import collections
import json
from pathlib import Path

import pytest

from emollm_jax.data import media, pipeline, records
from emollm_jax.data.bad_input import BadRecordError
from emollm_jax.data.sources import builder
from emollm_jax.data.sources.__main__ import main
from emollm_jax.data.sources.registry import SOURCES
from emollm_jax.tasks import EMOTIONS, TASK_LABELS
from tests.data.conftest import tiny_config
from tests.data.sources.fixtures import MAKERS, make_ferplus

FAMILY = {"emotion_closed": "emotion", "emotion_open": "emotion"}


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def _all_records(out: Path) -> list[dict]:
    return [r for split in records.SPLITS for r in _lines(out / f"{split}.jsonl")]


def _key(record: dict, layout) -> str:
    """The fixture's key of a record: ``<split>-<source id>`` (``/<family>`` when a row gives
    several records)."""
    prefix = f"{record['source']}-{record['task']}-"
    key = record["id"].removeprefix(prefix)
    return key if key in layout.good else f"{key}/{FAMILY.get(record['task'], record['task'])}"


def _build(tmp_path, name, maker=None, **kwargs):
    layout = (maker or MAKERS[name])(tmp_path / name)
    out = tmp_path / "out"
    tally = builder.build({name: tmp_path / name}, out, **kwargs)
    return layout, out, tally


def _config(out: Path):
    c = tiny_config()
    c.data.dir = str(out)
    c.data.eval_batch_size = 2
    c.data.prefetch_buffer = 2
    c.data.strict = True
    # MIntRec's twenty listed intents take ~300 tokens of the tiny test tokenizer
    c.data.seq_buckets = (256, 512)
    return c


@pytest.mark.parametrize("name", list(MAKERS))
def test_each_layout_converts_and_reads_back(tmp_path, tokenizer, name):
    layout, out, tally = _build(tmp_path, name, seed=1)
    source = SOURCES[name]

    assert dict(tally.bad[name].counts) == dict(layout.bad)
    written = _all_records(out)
    assert sorted(_key(r, layout) for r in written) == sorted(layout.good)
    for r in written:
        split, family, answer, text = layout.good[_key(r, layout)]
        assert FAMILY.get(r["task"], r["task"]) == family and r["answer"] == answer
        assert r["id"] in {x["id"] for x in _lines(out / f"{split}.jsonl")}
        assert r["conversations"][-1] == {"from": "gpt", "value": answer}
        human = r["conversations"][0]["value"]
        assert human.startswith("<image>\n")
        if text:
            assert f'"{text}"' in human
        labels = source.label_set(family)
        if r["task"] in ("emotion_closed", "intent"):
            assert sorted(r["options"]) == sorted(labels)
            assert ", ".join(r["options"]) in human
        else:
            assert not any(o in human for o in r.get("options", ()) if len(o) > 3)
            expected = None if labels == TASK_LABELS[r["task"]] else list(labels)
            assert r.get("options") == expected
        path = out / r["media"]["path"]
        frames = media.decode(r["media"]["type"], path.read_bytes(), num_frames=4,
                              max_pixels=10**6)  # fmt: skip
        assert frames.shape[0] == (4 if r["media"]["type"] == "video" else 1)
        assert r["media"]["type"] == ("video" if name in ("meld", "mintrec", "mustard") else "image")

    # the existing readers take the folder unchanged: strict JSONL reading, then Grain batches
    config = _config(out)
    for split in records.SPLITS:
        if not (out / f"{split}.jsonl").exists():
            continue
        found, bad = records.read_split(out, split, max_pixels=10**6, strict=True)
        assert bad.total == 0
        metas = [
            m
            for _, meta in pipeline.eval_dataset(config, split=split, tokenizer=tokenizer)
            for m in meta
        ]
        assert sorted(m["id"] for m in metas) == sorted(r["id"] for r in found)
        for m in metas:
            assert m["answer"] in m["options"]

    summary = (out / "summary.md").read_text()
    for reason, n in layout.bad.items():
        assert f"| {name} | {reason} | {n} |" in summary


def test_ferplus_votes_replace_the_fer_labels(tmp_path):
    layout, out, tally = _build(tmp_path, "fer2013", maker=make_ferplus)
    assert dict(tally.bad["fer2013"].counts) == dict(layout.bad)
    got = {_key(r, layout): r["answer"] for r in _all_records(out)}
    assert got == {k: v[2] for k, v in layout.good.items()}
    assert set(got.values()) <= set(EMOTIONS)


def test_strict_stops_at_the_first_bad_row_and_leaves_nothing(tmp_path):
    MAKERS["hateful_memes"](tmp_path / "hm")
    out = tmp_path / "out"
    with pytest.raises(BadRecordError, match=r"train\.jsonl:2.*invalid_json"):
        builder.build({"hateful_memes": tmp_path / "hm"}, out, strict=True)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["hm"]  # no partial folder either


def test_same_seed_same_build_other_seed_other_instructions(tmp_path):
    MAKERS["meld"](tmp_path / "meld")
    MAKERS["mintrec"](tmp_path / "mintrec")
    srcs = {"meld": tmp_path / "meld", "mintrec": tmp_path / "mintrec"}

    def texts(out):
        return {r["id"]: r["conversations"][0]["value"] for r in _all_records(out)}

    builder.build(srcs, tmp_path / "a", seed=3, media="copy")
    builder.build(srcs, tmp_path / "b", seed=3)
    builder.build(srcs, tmp_path / "c", seed=4)
    for split in ("train", "validation", "test"):
        a = (tmp_path / "a" / f"{split}.jsonl").read_bytes()
        assert a == (tmp_path / "b" / f"{split}.jsonl").read_bytes()
    assert (tmp_path / "a" / "summary.md").read_text() == (tmp_path / "b" / "summary.md").read_text()
    a, c = texts(tmp_path / "a"), texts(tmp_path / "c")
    assert a.keys() == c.keys() or {k.split("-", 2)[2] for k in a} == {
        k.split("-", 2)[2] for k in c
    }
    assert a != c


def test_both_emotion_subtasks_and_one_drawn(tmp_path):
    MAKERS["emoset"](tmp_path / "emoset")
    one = builder.build({"emoset": tmp_path / "emoset"}, tmp_path / "one")
    both = builder.build({"emoset": tmp_path / "emoset"}, tmp_path / "both", emotion_subtasks="both")
    assert sum(one.records.values()) == 4
    tasks = collections.Counter(t for t, _, _ in both.records.elements())
    assert tasks == {"emotion_closed": 4, "emotion_open": 4}


def test_existing_output_is_refused_then_replaced_only_on_success(tmp_path):
    MAKERS["mmsd2"](tmp_path / "mmsd2")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    with pytest.raises(FileExistsError, match="--overwrite"):
        builder.build({"mmsd2": tmp_path / "mmsd2"}, out)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="MMSD2.0"):  # a failed build keeps the old one
        builder.build({"mmsd2": tmp_path / "empty"}, out, overwrite=True)
    assert (out / "keep.txt").read_text() == "old"
    builder.build({"mmsd2": tmp_path / "mmsd2"}, out, overwrite=True)
    assert not (out / "keep.txt").exists() and (out / "train.jsonl").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "mmsd2", "out"]


def test_decode_checks_every_clip_through_pyav(tmp_path):
    MAKERS["mustard"](tmp_path / "mustard")
    tally = builder.build({"mustard": tmp_path / "mustard"}, tmp_path / "out", decode_frames=4)
    assert sum(tally.records.values()) == 2


def test_command_line(tmp_path, capsys):
    MAKERS["hateful_memes"](tmp_path / "hm")
    MAKERS["memotion"](tmp_path / "mem")
    out = tmp_path / "out"
    argv = ["build", "--source", f"hateful_memes={tmp_path / 'hm'}", "--source",
            f"memotion={tmp_path / 'mem'}", str(out), "--seed", "2", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    said = capsys.readouterr().out
    assert "train 6" in said and "9 rows skipped" in said
    assert main(argv) == 1
    assert "exists" in capsys.readouterr().err
    assert main([*argv, "--overwrite", "--strict"]) == 1
    assert "train.jsonl:2" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["build", "--source", f"nope={tmp_path}", str(tmp_path / "x")])
