"""The Grain pipeline: EmoBench records -> batches for training, and prompts for evaluation.

Training (``train_dataset``)::

    source (JSONL records | TFDS ArrayRecord) -> [first data.train_fraction of it]
    -> shuffle(seed) -> repeat -> shard by JAX process
    -> encode (hook, template, tokens, image spans, labels, decode, CLIP) -> drop bad
    -> [pack first-fit] -> batch -> [Grain worker processes]

Evaluation (``eval_dataset`` / ``eval_batches``): the same source and encoder in eval mode, no
shuffle or repeat, prompts only, LEFT-padded, each batch a tuple ``(arrays, meta)``.

Both return a ``grain.IterDataset``; ``iter(ds)`` is a ``grain.DatasetIterator`` whose
``get_state()/set_state()`` (or Orbax via ``grain.checkpoint.CheckpointSave/Restore``) make a
resumed run see exactly the next batch. Batches are per-process numpy dicts
(``batching.py`` documents the keys); ``global_batch.to_global`` turns them into global arrays.

Our choices: shuffling is a global permutation per epoch (Grain reseeds each epoch) and the
process shard is taken after it (process p reads indices p, p + P, ...), so the epoch order is
the same whatever the process count. With ``data.worker_count`` > 0 each Grain worker batches its
own slice, so the batch order depends on the worker count (deterministic for a given count; the
checkpointed state covers every worker). ``prompt_hook`` (a picklable ``record -> record``) is where
EmoPrompt rewrites conversations before templating.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Iterator
from pathlib import Path

import grain
import jax

from emollm_jax.config.model import ModelConfig, from_config_dict
from emollm_jax.data import batching, records
from emollm_jax.data.bad_input import BadInputLog
from emollm_jax.data.data_config import check_data_config
from emollm_jax.data.example_encoder import ExampleEncoder
from emollm_jax.data.mini import make_mini_emobench
from emollm_jax.errors import ConfigError
from emollm_jax.paths import is_url, local_folder

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]


def resolve_path(path: str) -> Path:
    """A config path as given, else relative to the repository (for the shipped assets)."""
    p = Path(path)
    return p if p.exists() or p.is_absolute() else REPO_ROOT / p


def load_tokenizer(path: str):
    """A transformers tokenizer from a local folder (never the hub)."""
    from transformers import AutoTokenizer

    if is_url(path):  # read whole into memory: the temporary copy may go afterwards
        with local_folder(path) as folder:
            return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    return AutoTokenizer.from_pretrained(str(resolve_path(path)), local_files_only=True)


def tfds_dir(data_cfg) -> Path:
    return Path(data_cfg.tfds_dir) if data_cfg.tfds_dir else Path(data_cfg.dir) / "tfds"


def ensure_data(data_cfg) -> None:
    """Make the mini EmoBench at ``data.dir`` when asked to and the folder does not exist.

    Only a missing folder triggers it (never an existing one lacking files), so that a typo in
    the path of a real data set cannot silently turn into training on synthetic data unless
    ``data.make_mini_if_missing`` is on; even then it is logged at warning level.
    """
    if Path(data_cfg.dir).exists() or not data_cfg.get("make_mini_if_missing", False):
        return
    log.warning("data.dir %s does not exist: making the mini EmoBench there", data_cfg.dir)
    make_mini_emobench.build(data_cfg.dir, seed=0)


def open_source(data_cfg, split: str):
    """The split's records as a random-access sequence of normalised records."""
    ensure_data(data_cfg)
    if data_cfg.source == "jsonl":
        found, _ = records.read_split(
            data_cfg.dir, split, max_pixels=data_cfg.max_pixels, strict=data_cfg.strict
        )
        source = found
    else:
        # Here, not at the top: TFDS loads TensorFlow (seconds), only for data.source="tfds".
        from emollm_jax.data import emobench_tfds

        out = tfds_dir(data_cfg)
        if not (
            out / emobench_tfds.NAME / emobench_tfds.DATA_VERSION / "dataset_info.json"
        ).exists():
            log.info("building the EmoBench TFDS data set from %s into %s", data_cfg.dir, out)
            emobench_tfds.build(
                data_cfg.dir, out, max_pixels=data_cfg.max_pixels, strict=data_cfg.strict
            )
        source = emobench_tfds.TfdsSource(out, split)
    if len(source) == 0:
        raise ValueError(f"split {split!r} of {data_cfg.dir} has no usable records")
    return source


def _process(process_index: int | None, process_count: int | None) -> tuple[int, int]:
    index = jax.process_index() if process_index is None else process_index
    count = jax.process_count() if process_count is None else process_count
    return index, count


def _local_batch(global_batch: int, process_count: int, field: str) -> int:
    if global_batch % process_count:
        raise ConfigError(
            f"data.{field}",
            f"{global_batch} is not divisible by {process_count} processes",
            value=global_batch,
            expected=f"a multiple of {process_count}",
        )
    return global_batch // process_count


def make_encoder(
    config,
    mode: str,
    *,
    tokenizer=None,
    prompt_hook: Callable[[dict], dict] | None = None,
    model_cfg: ModelConfig | None = None,
) -> ExampleEncoder:
    d = config.data
    return ExampleEncoder(
        tokenizer if tokenizer is not None else load_tokenizer(d.tokenizer),
        model_cfg or from_config_dict(config.model),
        chat_template=d.chat_template,
        video_frames=d.video_frames,
        max_len=max(d.seq_buckets),
        max_frames=max(d.frame_buckets),
        max_pixels=d.max_pixels,
        mode=mode,
        prompt_hook=prompt_hook,
        # Only the endless training stream can hang on refusals; eval passes end by themselves.
        bad=BadInputLog(
            f"{mode} pipeline",
            strict=d.strict,
            max_consecutive=d.get("max_consecutive_bad", 0) if mode == "train" else 0,
        ),
        loss_weights=bool(getattr(prompt_hook, "weights_targets", False)),
    )


def _not_none(x) -> bool:
    return x is not None


def train_records(n: int, fraction: float) -> int:
    """How many of a split's ``n`` records ``data.train_fraction`` trains on: the first
    ``round(fraction * n)``, at least one. The same records for every seed (the seed shuffles
    them), and a smaller share's records are a subset of a larger one's."""
    if not 0 < fraction <= 1:
        raise ConfigError("data.train_fraction", value=fraction, expected="above 0, at most 1")
    return max(1, round(fraction * n))


def train_dataset(
    config,
    *,
    split: str = "train",
    prompt_hook: Callable[[dict], dict] | None = None,
    tokenizer=None,
    process_index: int | None = None,
    process_count: int | None = None,
) -> grain.IterDataset:
    """Endless (``data.num_epochs=0``) training batches for this JAX process."""
    d = config.data
    check_data_config(d)
    index, count = _process(process_index, process_count)
    batch_size = _local_batch(d.batch_size, count, "batch_size")
    encoder = make_encoder(config, "train", tokenizer=tokenizer, prompt_hook=prompt_hook)
    pad_id = _pad_id(encoder.tokenizer)

    ds = grain.MapDataset.source(open_source(d, split))
    ds = ds[: train_records(len(ds), d.get("train_fraction", 1.0))]
    if d.shuffle:
        ds = ds.shuffle(seed=d.seed)
    ds = ds.repeat(d.num_epochs or None)
    ds = ds[index::count]
    ds = ds.map(encoder).filter(_not_none)
    it = ds.to_iter_dataset(
        grain.ReadOptions(num_threads=d.read_threads, prefetch_buffer_size=d.prefetch_buffer)
    )
    if d.pack:
        seq_len, num_frames = max(d.seq_buckets), max(d.frame_buckets)
        it = grain.experimental.FirstFitPackIterDataset(
            it,
            length_struct=batching.packing_lengths(seq_len, num_frames, encoder.loss_weights),
            padding_struct=batching.packing_padding(pad_id, encoder.loss_weights),
            num_packing_bins=batch_size,
            seed=d.seed,
            shuffle_bins=False,
        )
        it = it.map(batching.finish_packed_row).batch(batch_size, drop_remainder=True)
    else:
        seq_buckets, frame_buckets = _buckets(d, count)
        collate = functools.partial(
            batching.collate_train,
            seq_buckets=seq_buckets,
            frame_buckets=frame_buckets,
            pad_id=pad_id,
        )
        it = it.batch(batch_size, drop_remainder=True, batch_fn=collate)
    return _with_workers(it, d)


def eval_dataset(
    config,
    *,
    split: str = "test",
    prompt_hook: Callable[[dict], dict] | None = None,
    tokenizer=None,
    process_index: int | None = None,
    process_count: int | None = None,
) -> grain.IterDataset:
    """One pass over this process's share of ``split``: ``(arrays, meta)`` per batch."""
    d = config.data
    check_data_config(d)
    index, count = _process(process_index, process_count)
    batch_size = _local_batch(d.eval_batch_size, count, "eval_batch_size")
    encoder = make_encoder(config, "eval", tokenizer=tokenizer, prompt_hook=prompt_hook)
    ds = grain.MapDataset.source(open_source(d, split))[index::count]
    ds = ds.map(encoder).filter(_not_none)
    it = ds.to_iter_dataset(
        grain.ReadOptions(num_threads=d.read_threads, prefetch_buffer_size=d.prefetch_buffer)
    )
    seq_buckets, frame_buckets = _buckets(d, count)
    collate = functools.partial(
        batching.collate_eval,
        batch_size=batch_size,
        seq_buckets=seq_buckets,
        frame_buckets=frame_buckets,
        pad_id=_pad_id(encoder.tokenizer),
    )
    return _with_workers(it.batch(batch_size, drop_remainder=False, batch_fn=collate), d)


def eval_batches(
    config, *, split: str = "test", process_count: int | None = None, **kwargs
) -> Iterator[tuple[dict, list[dict]]]:
    """``eval_dataset`` with the same number of batches on every process.

    Processes hold shards that differ by one record (and by skipped records), but every process
    must join every global batch. The count is ``ceil(ceil(records / processes) / local
    batch)``; a process that runs out repeats its last batch with empty metadata.
    """
    _, count = _process(None, process_count)
    d = config.data
    n_records = len(open_source(d, split))
    local = _local_batch(d.eval_batch_size, count, "eval_batch_size")
    num_batches = math.ceil(math.ceil(n_records / count) / local)
    last = None
    yielded = 0
    for arrays, meta in eval_dataset(config, split=split, process_count=count, **kwargs):
        last = arrays
        yielded += 1
        yield arrays, meta
    if last is None:
        raise ValueError(f"no usable record in this process's share of {split!r}")
    for _ in range(num_batches - yielded):
        yield last, []


def _buckets(d, process_count: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(sequence, frame) buckets. Several processes must agree on every global batch's shape
    but each pads its own rows, so with more than one process only the largest buckets are
    used."""
    if process_count > 1:
        return (max(d.seq_buckets),), (max(d.frame_buckets),)
    return tuple(d.seq_buckets), tuple(d.frame_buckets)


def _pad_id(tokenizer) -> int:
    pad = tokenizer.pad_token_id
    return int(pad if pad is not None else tokenizer.eos_token_id)


def _with_workers(it: grain.IterDataset, d) -> grain.IterDataset:
    if d.worker_count <= 0:
        return it
    from absl import flags

    # Grain reads absl flags when it starts workers; outside an absl app (pytest, notebooks)
    # take the defaults rather than fail.
    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()
    return it.mp_prefetch(
        grain.MultiprocessingOptions(
            num_workers=d.worker_count, per_worker_buffer_size=d.worker_buffer_size
        )
    )
