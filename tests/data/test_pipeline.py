"""The Grain pipeline: the batch contract, eval prompts, the hook, packing, sharding, resume."""

import itertools
import json

import numpy as np
import pytest

from emollm_jax.config.model import from_config_dict
from emollm_jax.data import pipeline
from emollm_jax.data.data_config import check_data_config
from emollm_jax.errors import ConfigError
from emollm_jax.models.visual_tokens import tokens_per_media

IMAGE_ID = 4


def _runs(ids, token=IMAGE_ID):
    """(start, length) of each contiguous run of ``token``."""
    runs, start = [], None
    for i, t in enumerate([*ids, None]):
        if t == token and start is None:
            start = i
        elif t != token and start is not None:
            runs.append((start, i - start))
            start = None
    return runs


def _records(mini_dir, split):
    return [json.loads(x) for x in (mini_dir / f"{split}.jsonl").read_text().splitlines()]


def _check_media(row, model_cfg, video_frames):
    """One contiguous image-token span per media item, sized by tokens_per_media."""
    runs = _runs(row["input_ids"].tolist())
    media_ids = sorted(set(row["frame_media"].tolist()) - {-1})
    assert len(runs) == len(media_ids)
    for (_, length), m in zip(runs, media_ids, strict=True):
        frames = int((row["frame_media"] == m).sum())
        kind = "image" if frames == 1 else "video"
        assert frames == (1 if kind == "image" else video_frames)
        assert length == tokens_per_media(model_cfg, kind, frames)
    pad_frames = row["frame_media"] == -1
    assert not row["pixel_values"][pad_frames].any()
    for frame in row["pixel_values"][~pad_frames]:
        assert frame.std() > 0.1  # a real, normalised picture


def _check_train_batch(batch, cfg, tokenizer):
    d = cfg.data
    b, s = batch["input_ids"].shape
    assert b == d.batch_size and s in d.seq_buckets
    assert batch["pixel_values"].shape[:2] == batch["frame_media"].shape
    assert batch["pixel_values"].shape[1] in d.frame_buckets
    assert batch["pixel_values"].shape[2:] == (3, 64, 64)
    for key in ("input_ids", "attention_mask", "labels", "positions", "segment_ids", "frame_media"):
        assert batch[key].dtype == np.int32, key
    assert batch["pixel_values"].dtype == np.float32
    np.testing.assert_array_equal(batch["attention_mask"], batch["segment_ids"] > 0)
    model_cfg = from_config_dict(cfg.model)
    for i in range(b):
        row = {k: v[i] for k, v in batch.items()}
        real = row["attention_mask"] == 1
        target = row["labels"] != -100
        assert not (target & ~real).any()
        np.testing.assert_array_equal(row["labels"][target], row["input_ids"][target])
        assert not (target & (row["input_ids"] == IMAGE_ID)).any()
        assert (row["input_ids"][~real] == tokenizer.pad_token_id).all()
        _check_media(row, model_cfg, d.video_frames)
        for seg in set(row["segment_ids"][real].tolist()):
            mine = row["segment_ids"] == seg
            np.testing.assert_array_equal(row["positions"][mine], np.arange(mine.sum()))
    return model_cfg


def test_train_batches_follow_the_contract(data_config, tokenizer, mini_dir):
    answers = {r["answer"] for r in _records(mini_dir, "train")}
    shapes = set()
    for batch in itertools.islice(pipeline.train_dataset(data_config, tokenizer=tokenizer), 8):
        _check_train_batch(batch, data_config, tokenizer)
        shapes.add(batch["pixel_values"].shape[1])
        for i in range(len(batch["input_ids"])):
            assert (batch["segment_ids"][i] <= 1).all()
            target = batch["labels"][i] != -100
            # Labels are the assistant's answer and the closing eos, nothing else.
            text = tokenizer.decode(batch["labels"][i][target])
            assert text.endswith("</s>") and text[1:-4] in answers, text
            assert batch["input_ids"][i][0] == tokenizer.bos_token_id
    assert shapes == {1, 8}  # image-only and video batches both occur


def test_chatml_labels_end_with_im_end(data_config, tokenizer):
    data_config.data.chat_template = "chatml"
    batch = next(iter(pipeline.train_dataset(data_config, tokenizer=tokenizer)))
    for labels in batch["labels"]:
        assert tokenizer.decode(labels[labels != -100]).endswith("<|im_end|>")
    assert (batch["input_ids"][:, 0] == 5).all()  # <|im_start|>, no bos


def test_eval_prompts_are_left_padded_with_metadata(data_config, tokenizer, mini_dir):
    records = {r["id"]: r for r in _records(mini_dir, "validation")}
    seen = []
    model_cfg = from_config_dict(data_config.model)
    for arrays, meta in pipeline.eval_batches(data_config, split="validation", tokenizer=tokenizer):
        assert "labels" not in arrays and arrays["input_ids"].shape[0] == 4
        for i, m in enumerate(meta):
            mask = arrays["attention_mask"][i]
            n = int(mask.sum())
            assert (mask[-n:] == 1).all() and (mask[:-n] == 0).all()
            np.testing.assert_array_equal(arrays["positions"][i][-n:], np.arange(n))
            text = tokenizer.decode(arrays["input_ids"][i][-n:])
            assert text.endswith("ASSISTANT:") and m["answer"] not in text[-12:]
            assert m["prompt"].endswith("ASSISTANT:")
            r = records[m["id"]]
            assert m["task"] == r["task"] and m["answer"] == r["answer"]
            assert m["answer"] in m["options"]
            _check_media({k: v[i] for k, v in arrays.items()}, model_cfg, 8)
        seen += [m["id"] for m in meta]
    assert sorted(seen) == sorted(records)


def test_prompt_hook_changes_reach_the_tokens(data_config, tokenizer):
    def hook(record):
        record["conversations"][0]["value"] += " Look at the mouth first."
        record["conversations"][-1]["value"] = "Because: " + record["conversations"][-1]["value"]
        return record

    batch = next(iter(pipeline.train_dataset(data_config, tokenizer=tokenizer, prompt_hook=hook)))
    for ids, labels in zip(batch["input_ids"], batch["labels"], strict=True):
        assert "Look at the mouth first. ASSISTANT:" in tokenizer.decode(ids)
        assert tokenizer.decode(labels[labels != -100]).startswith(" Because: ")


def test_packing_keeps_examples_apart(data_config, tokenizer):
    data_config.data.pack = True
    model_cfg = None
    for batch in itertools.islice(pipeline.train_dataset(data_config, tokenizer=tokenizer), 3):
        assert batch["input_ids"].shape == (4, 256) and batch["frame_media"].shape == (4, 8)
        model_cfg = _check_train_batch(batch, data_config, tokenizer)
        assert batch["segment_ids"].max() > 1  # several examples share a row
        for i in range(4):
            seg, labels = batch["segment_ids"][i], batch["labels"][i]
            for s in range(1, seg.max() + 1):
                # Every packed example starts with bos and has its own answer.
                first = np.argmax(seg == s)
                assert batch["input_ids"][i][first] == tokenizer.bos_token_id
                assert (labels[seg == s] != -100).any()
    assert model_cfg is not None


def test_processes_read_disjoint_shards(data_config, tokenizer, mini_dir):
    shards = [
        {
            m["id"]
            for _, meta in pipeline.eval_dataset(
                data_config, split="test", tokenizer=tokenizer, process_index=p, process_count=2
            )
            for m in meta
        }
        for p in range(2)
    ]
    assert shards[0].isdisjoint(shards[1]) and len(shards[0]) == len(shards[1])
    assert shards[0] | shards[1] == {r["id"] for r in _records(mini_dir, "test")}
    batch = next(iter(pipeline.train_dataset(data_config, tokenizer=tokenizer, process_count=2)))
    assert batch["input_ids"].shape[0] == data_config.data.batch_size // 2


def _trained_ids(config, tokenizer, batches):
    seen = []

    def hook(record):
        seen.append(record["id"])
        return record

    config.data.read_threads = 0  # one thread: the order records are encoded in is the stream's
    config.data.prefetch_buffer = 1
    it = iter(pipeline.train_dataset(config, tokenizer=tokenizer, prompt_hook=hook))
    for _ in range(batches):
        next(it)
    return seen


def test_train_fraction_trains_on_the_first_records_of_the_split(data_config, tokenizer, mini_dir):
    assert [pipeline.train_records(100, f) for f in (0.25, 0.5, 1.0, 0.001)] == [25, 50, 100, 1]
    with pytest.raises(ConfigError, match="^config.data.train_fraction: "):
        pipeline.train_records(100, 0.0)
    ids = [r["id"] for r in _records(mini_dir, "train")]
    quarter = set(ids[: pipeline.train_records(len(ids), 0.25)])
    data_config.data.train_fraction = 0.25
    orders = []
    for seed in (0, 1):
        data_config.data.seed = seed
        seen = _trained_ids(data_config, tokenizer, 2 * len(ids) // data_config.data.batch_size)
        assert set(seen) == quarter  # every epoch over the same records, and only them
        orders.append(seen[: len(quarter)])
    assert orders[0] != orders[1]  # the seed shuffles the subset
    data_config.data.train_fraction = 1.0
    assert set(_trained_ids(data_config, tokenizer, 2)) - quarter  # the whole split otherwise


def _same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.mark.parametrize("pack", [False, True])
def test_restored_iterator_yields_the_same_next_batches(data_config, tokenizer, pack):
    data_config.data.pack = pack
    it = iter(pipeline.train_dataset(data_config, tokenizer=tokenizer))
    for _ in range(3):
        next(it)
    state = it.get_state()
    expected = [next(it) for _ in range(3)]
    fresh = iter(pipeline.train_dataset(data_config, tokenizer=tokenizer))
    fresh.set_state(state)
    for want in expected:
        _same(next(fresh), want)


def test_orbax_handler_round_trips_the_iterator(data_config, tokenizer, tmp_path):
    import grain
    from etils import epath

    it = iter(pipeline.train_dataset(data_config, tokenizer=tokenizer))
    next(it)
    grain.checkpoint.CheckpointHandler().save(epath.Path(tmp_path), item=it)
    want = next(it)
    fresh = iter(pipeline.train_dataset(data_config, tokenizer=tokenizer))
    grain.checkpoint.CheckpointHandler().restore(epath.Path(tmp_path), item=fresh)
    _same(next(fresh), want)


def test_tfds_source_gives_the_same_examples_as_jsonl(data_config, tokenizer, tmp_path):
    from_jsonl = list(pipeline.eval_dataset(data_config, split="test", tokenizer=tokenizer))
    train_jsonl = next(iter(pipeline.train_dataset(data_config, tokenizer=tokenizer)))
    data_config.data.source = "tfds"
    data_config.data.tfds_dir = str(tmp_path / "tfds")  # built on first use
    from_tfds = list(pipeline.eval_dataset(data_config, split="test", tokenizer=tokenizer))
    assert (tmp_path / "tfds" / "emo_bench" / "1.0.0" / "dataset_info.json").exists()
    assert len(from_tfds) == len(from_jsonl)
    for (a, meta_a), (b, meta_b) in zip(from_jsonl, from_tfds, strict=True):
        assert meta_a == meta_b
        _same(a, b)
    _same(train_jsonl, next(iter(pipeline.train_dataset(data_config, tokenizer=tokenizer))))


def test_global_arrays_are_sharded_over_the_batch_axes(data_config, tokenizer):
    import jax

    from emollm_jax.data.global_batch import to_global

    if jax.device_count() < 8:
        pytest.skip("needs XLA_FLAGS=--xla_force_host_platform_device_count=8")
    data_config.data.batch_size = 8
    batch = next(iter(pipeline.train_dataset(data_config, tokenizer=tokenizer)))
    mesh = jax.make_mesh((4, 2, 1), ("data", "fsdp", "tensor"))
    arrays = to_global(batch, mesh)
    for name, value in arrays.items():
        assert value.shape == batch[name].shape
        assert value.sharding.spec[0] == ("data", "fsdp")
        assert value.addressable_shards[0].data.shape[0] == 1
        np.testing.assert_array_equal(np.asarray(value), batch[name])
    data_only = to_global(batch, jax.make_mesh((8,), ("data",)))
    assert data_only["input_ids"].sharding.spec[0] in ("data", ("data",))


def test_bad_data_config_names_the_field(data_config):
    data_config.data.frame_buckets = (1, 4)
    with pytest.raises(ConfigError, match=r"config\.data\.frame_buckets"):
        check_data_config(data_config.data)
    data_config.data.frame_buckets = (1, 8)
    data_config.data.chat_template = "alpaca"
    with pytest.raises(ConfigError, match=r"config\.data\.chat_template"):
        check_data_config(data_config.data)


@pytest.mark.parametrize("field", ["dir", "tfds_dir"])
def test_cloud_data_folder_is_refused_naming_the_field(data_config, field):
    data_config.data[field] = "gs://bucket/emobench"
    with pytest.raises(ConfigError, match=rf"config\.data\.{field}: 'gs://bucket/emobench'.*"
                       "cloud storage is not supported"):  # fmt: skip
        check_data_config(data_config.data)


@pytest.mark.slow
def test_worker_processes_resume_exactly(data_config, tokenizer):
    """With Grain worker processes the state covers every worker (order depends on the count)."""
    data_config.data.worker_count = 1
    it = iter(pipeline.train_dataset(data_config, tokenizer=tokenizer))
    next(it)
    state = it.get_state()
    expected = [next(it) for _ in range(2)]
    it.close()
    fresh = iter(pipeline.train_dataset(data_config, tokenizer=tokenizer))
    fresh.set_state(state)
    try:
        for want in expected:
            _same(next(fresh), want)
    finally:
        fresh.close()


def test_mini_emobench_is_made_only_when_asked_and_missing(
    data_config, tmp_path, caplog, monkeypatch
):
    from emollm_jax.data.mini import make_mini_emobench

    monkeypatch.setattr(make_mini_emobench, "SPLIT_SIZES", {"train": 6, "validation": 6, "test": 6})
    data_config.data.dir = str(tmp_path / "absent")
    with pytest.raises(FileNotFoundError):
        pipeline.open_source(data_config.data, "test")
    data_config.data.make_mini_if_missing = True
    (tmp_path / "empty").mkdir()
    data_config.data.dir = str(tmp_path / "empty")
    with pytest.raises(FileNotFoundError):  # an existing folder is never filled
        pipeline.open_source(data_config.data, "test")
    data_config.data.dir = str(tmp_path / "absent")
    source = pipeline.open_source(data_config.data, "test")
    assert len(source) == 6
    assert "making the mini EmoBench" in caplog.text
