"""An EmoBench evaluation run: load a model, generate answers for a split, score, write files.

``evaluate_generation(config, checkpoint, split)`` is the ``generate`` mode of ``emollm
evaluate`` (``emollm_jax.inference.modes``). Our choices:

- Model: a Hugging Face folder or an Orbax training run's latest complete checkpoint
  (``emollm_jax.inference.load.load_hf_or_run``), with ``config.model``'s attention settings.
  The prompts are built from ``config.model`` (image token id, visual tokens per image), so a
  loaded model that disagrees with it is refused, naming the field.
- Mesh: ``config.mesh`` (shape, strategy, rules) when the config has one; parameters are moved
  to their shardings and batches split over the ``batch`` rule's axes.
- Prompts come from the data pipeline's eval mode (left-padded, bucketed; EmoPrompt's eval
  hook applied when ``config.emoprompt`` turns it on), generation from
  ``emollm_jax.generate`` with ``config.eval``, parsing and scoring from ``emollm_jax.eval``.
- Rows record the checkpoint step they were generated with (None for a Hugging Face folder);
  a folder holding rows of another step is refused, since a training run's latest checkpoint
  moves on while the default output folder ``<run>/eval/<split>`` stays.
- Resumable: rows go to ``predictions.jsonl`` (one fsynced append per batch); a rerun skips the
  batches whose records are all stored and stores only missing records of the others. The
  scores are computed from every row of the output folder's predictions, so a run with
  ``eval.limit`` followed by a full run scores the full split (use another ``--workdir`` for
  another model or config).
- ``eval.limit`` keeps the first ``limit`` records of the split (with several JAX processes,
  about that many: each process keeps its first ``ceil(limit / processes)``).
- Several JAX processes: every process generates its share of every global batch and appends
  to its own ``predictions.p<index>.jsonl``. Every process reads all prediction files of the
  folder to know what is done (so a rerun with another process count resumes too), and
  process 0 scores them all and writes the results.
- Progress: one line per batch (rows done, rows/s, time left) through ``log``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils

from emollm_jax.checkpoint.manager import checkpoint_root
from emollm_jax.checkpoint.restore import weights_read
from emollm_jax.config.model import from_config_dict
from emollm_jax.data.data_config import check_data_config
from emollm_jax.data.pipeline import eval_batches, load_tokenizer, open_source
from emollm_jax.destinations import check_destination
from emollm_jax.emoprompt.hook import make_prompt_hook
from emollm_jax.errors import ConfigError
from emollm_jax.eval.answers import parse_answer
from emollm_jax.eval.metrics import Metrics, compute_metrics
from emollm_jax.eval.predictions import PredictionStore, row_key
from emollm_jax.eval.result_files import markdown_table, write_results
from emollm_jax.folder_lock import FolderLock
from emollm_jax.generate import GenerateConfig, Generator, SamplingConfig
from emollm_jax.generate.text import decode_answers, stop_settings
from emollm_jax.inference.load import check_model_matches, is_hf_folder, load_hf_or_run
from emollm_jax.paths import AnyPath, as_path, resolved
from emollm_jax.sharding.mesh import mesh_and_rules
from emollm_jax.tasks import TASKS

PREDICTIONS = "predictions.jsonl"


class OutputFolderError(ValueError):
    """The output folder holds predictions of another checkpoint step or other settings."""


def load_evaluated(checkpoint, config, step: int | None, mesh, rules):
    """The model an evaluation of ``checkpoint`` reads, and its step: ``step`` (default: the
    latest), the weights ``config.eval.weights`` names."""
    weights = config.eval.get("weights", "auto")
    return load_hf_or_run(
        checkpoint, config, step=step, pick=pick_step, mesh=mesh, rules=rules, weights=weights
    )


def evaluated_weights(checkpoint, config, step: int | None) -> str:
    """What an evaluation of ``checkpoint`` reads, for its results: ``ema`` or ``params`` (what
    ``config.eval.weights`` resolved to at ``step``), ``hf`` (a Hugging Face folder), or
    ``unknown`` (a model handed in without its step)."""
    if is_hf_folder(checkpoint):
        return "hf"
    if step is None:
        return "unknown"
    return weights_read(checkpoint, step, config.eval.get("weights", "auto"))


def pick_step(step: int) -> str:
    """How a user of ``emollm evaluate`` picks a training run's checkpoint ``step``."""
    return f"rerun with --step {step} to evaluate it"


@dataclasses.dataclass
class EvalResult:
    metrics: Metrics
    paths: dict[str, AnyPath]  # results files written (process 0 only; empty elsewhere)
    out_dir: AnyPath
    generated: int  # rows generated by this run (this process)
    skipped: int  # rows of this run's scope found already stored (this process)
    table: str  # the Markdown EmoBench table


def check_eval_config(e) -> None:
    """Fail on a bad ``config.eval`` field, naming it."""

    def fail(field: str, msg: str) -> ConfigError:
        return ConfigError(f"eval.{field}", msg, value=getattr(e, field, None))

    if e.max_new_tokens < 1:
        raise fail("max_new_tokens", f"must be >= 1, got {e.max_new_tokens}")
    if e.limit < 0:
        raise fail("limit", f"must be >= 0 (0 = all), got {e.limit}")
    try:
        SamplingConfig(e.temperature, e.top_k, e.top_p)
    except ValueError as err:
        field = str(err).split()[0]
        raise fail(field, str(err)) from err
    for field in ("stop_tokens", "stop_strings"):
        if isinstance(e[field], str) or not all(isinstance(s, str) for s in e[field]):
            raise fail(field, f"needs a tuple of strings, got {e[field]!r}")


def default_out_dir(checkpoint: str, split: str) -> AnyPath:
    return as_path(checkpoint) / "eval" / split


def mesh_and_rules_if_any(config) -> tuple[Any, tuple]:
    """The mesh and rule table of ``config.mesh``, or (None, ()) when the config has none."""
    if config.get("mesh") is None:
        return None, ()
    return mesh_and_rules(config)


def eval_prompt_hook(config) -> Callable[[dict], dict] | None:
    """EmoPrompt's record rewriter in eval mode when ``config.emoprompt`` turns it on: the
    evaluation prompts must be the ones the model was trained with."""
    return make_prompt_hook(config, "eval")


def _processes() -> tuple[int, int]:
    return jax.process_index(), jax.process_count()


def _any_process(flag: bool) -> bool:
    """Whether ``flag`` holds on any JAX process (all processes must call this together)."""
    if jax.process_count() == 1:
        return flag
    return bool(np.any(multihost_utils.process_allgather(np.asarray([flag]))))


def _store_path(out_dir: AnyPath) -> AnyPath:
    index, count = _processes()
    return out_dir / (PREDICTIONS if count == 1 else f"predictions.p{index}.jsonl")


def _all_rows(out_dir: AnyPath, own: PredictionStore) -> list[dict]:
    """The rows of every predictions file of the folder (those of earlier runs with another
    process count included)."""
    rows = own.rows
    for path in sorted(out_dir.glob("predictions*.jsonl")):
        if path != own.path:
            rows += _read_rows(path)
    return rows


def _read_rows(path: AnyPath) -> list[dict]:
    """Rows of another process's predictions file, read-only (its owner repairs a torn tail)."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


def _limited(batches: Iterator, limit_local: int | None, local_batch: int) -> Iterator:
    """Batches up to the first ``limit_local`` real rows of this process (same count on all)."""
    if limit_local is None:
        yield from batches
        return
    max_batches = max(1, math.ceil(limit_local / local_batch))
    seen = 0
    for i, (arrays, meta) in enumerate(batches):
        if i >= max_batches:
            return
        keep = meta[: max(0, limit_local - seen)]
        seen += len(keep)
        yield arrays, keep


def generation_settings(config) -> dict:
    """The settings that shape a prediction row (prompt, decoding): stored with every row, so
    that a rerun with other settings cannot reuse rows generated under these."""
    e, d = config.eval, config.data
    settings = {
        f"eval.{k}": e[k] for k in ("max_new_tokens", "temperature", "top_k", "top_p", "seed")
    }
    settings |= {f"eval.{k}": list(e[k]) for k in ("stop_tokens", "stop_strings")}
    settings |= {"data.chat_template": d.chat_template, "data.video_frames": d.video_frames}
    if config.get("emoprompt") is not None:
        settings |= {f"emoprompt.{k}": v for k, v in config.emoprompt.to_dict().items()}
    return settings


def _check_same_run(rows: list[dict], path: AnyPath, step: int | None, settings: dict) -> None:
    """Refuse to mix predictions of different checkpoint steps, or of other generation
    settings, in one folder."""
    steps = {row.get("checkpoint_step") for row in rows}
    if steps and steps != {step}:
        raise OutputFolderError(
            f"{path.parent} holds predictions of checkpoint step(s) {sorted(steps, key=str)}, "
            f"but step {step} is evaluated now: pass another --workdir"
        )
    for row in rows:
        stored = row.get("settings")
        if stored == settings:
            continue
        if stored is None:
            problem = "rows that record no settings (an older version wrote them)"
        else:
            keys = settings.keys() | stored.keys()
            fields = sorted(k for k in keys if stored.get(k) != settings.get(k))
            problem = "rows made with other settings: " + ", ".join(
                f"{k} {stored.get(k)!r} there, {settings.get(k)!r} now" for k in fields
            )
        raise OutputFolderError(f"{path.parent} holds {problem}: pass another --workdir")


def _row(meta: dict, output: str, step: int | None, settings: dict) -> dict:
    return {
        "id": meta["id"],
        "task": meta["task"],
        "prompt": meta["prompt"],
        "output": output,
        "parsed": parse_answer(output, meta["task"], meta["options"]),
        "gold": meta["answer"],
        "options": meta["options"],
        "checkpoint_step": step,
        "settings": settings,
    }


def check_out_dir(out_dir: AnyPath, checkpoint: str) -> None:
    """The output folder may live in the model's folder (the default ``<run>/eval/<split>``)
    but must neither be it, contain it, nor lie in a run's ``checkpoints`` folder."""
    check_destination(out_dir, checkpoint, what="--workdir", allow_inside=True)
    root = checkpoint_root(checkpoint)
    if root != as_path(checkpoint):
        check_destination(out_dir, root, what="--workdir")


def _expected_per_task(source, limit_local: int | None, count: int) -> dict:
    """Scored records of the split in this evaluation's scope (``eval.limit``), per task."""
    per_task: dict[str, set] = {}
    for index in range(count):
        shard = range(index, len(source), count)
        for i in shard if limit_local is None else shard[:limit_local]:
            record = source[i]
            if record["task"] in TASKS:
                per_task.setdefault(record["task"], set()).add(row_key(record))
    return per_task


def _dropped(expected: dict, rows: list[dict]) -> dict[str, int]:
    """Records of the scope with no prediction row: refused by the pipeline (too long for
    ``data.seq_buckets``, undecodable media...; the log names the reasons)."""
    done = {row_key(row) for row in rows}
    return {task: len(keys - done) for task, keys in sorted(expected.items())}


def evaluate_generation(
    config,
    checkpoint: str,
    split: str = "test",
    workdir: str | None = None,
    *,
    model=None,
    step: int | None = None,
    prompt_hook: Callable[[dict], dict] | None = None,
    log: Callable[[str], None] = print,
) -> EvalResult:
    """Generate, parse and score ``split``; write the result files (see the module docstring).

    ``step``: the training run's checkpoint to evaluate (default: its latest), or ``model``'s
    checkpoint step when ``model`` is given (that skips loading; it must agree with
    ``config.model``); ``prompt_hook`` rewrites records before templating (default: EmoPrompt's
    eval hook when ``config.emoprompt`` enables it).
    """
    check_eval_config(config.eval)
    check_data_config(config.data)  # before the model loads (a gs:// data.dir fails here)
    out_dir = as_path(workdir) if workdir else default_out_dir(checkpoint, split)
    check_out_dir(out_dir, checkpoint)
    process, _ = _processes()

    mesh, rules = mesh_and_rules_if_any(config)
    if model is None:
        model, step = load_evaluated(checkpoint, config, step, mesh, rules)
    check_model_matches(model.config, from_config_dict(config.model))
    # Only now (a mistyped --checkpoint fails above, leaving nothing behind).
    out_dir.mkdir(parents=True, exist_ok=True)
    lock = FolderLock(out_dir, "evaluation folder")
    if process == 0:
        lock.acquire()
    try:
        return _evaluate_into(
            out_dir,
            config,
            checkpoint,
            split,
            model=model,
            step=step,
            prompt_hook=prompt_hook,
            log=log,
            mesh=mesh,
            rules=rules,
        )
    finally:
        lock.release()


def _evaluate_into(
    out_dir: AnyPath, config, checkpoint, split, *, model, step, prompt_hook, log, mesh, rules
) -> EvalResult:
    e = config.eval
    process, count = _processes()
    tokenizer = load_tokenizer(config.data.tokenizer)
    stops = stop_settings(tokenizer, model.config.text.eos_token_ids, e.stop_tokens, e.stop_strings)
    gen_config = GenerateConfig(
        max_new_tokens=e.max_new_tokens,
        sampling=SamplingConfig(e.temperature, e.top_k, e.top_p),
        **stops,
    )
    generator = Generator(model, gen_config, mesh=mesh, rules=rules)

    store = PredictionStore(_store_path(out_dir))
    log(store.summary())
    if count > 1:
        multihost_utils.sync_global_devices("emollm_eval_stores_repaired")
    stored = _all_rows(out_dir, store)
    settings = generation_settings(config)
    _check_same_run(stored, store.path, step, settings)
    done = {row_key(row) for row in stored}

    source = open_source(config.data, split)
    n_records = len(source)
    limit_local = math.ceil(e.limit / count) if e.limit else None
    local_batch = config.data.eval_batch_size // count
    total = math.ceil(min(n_records, e.limit or n_records) / count)
    if prompt_hook is None:
        prompt_hook = eval_prompt_hook(config)
    batches = eval_batches(config, split=split, prompt_hook=prompt_hook, tokenizer=tokenizer)
    key = jax.random.key(e.seed)

    generated = skipped = seen = 0
    start = time.perf_counter()
    for index, (arrays, meta) in enumerate(_limited(batches, limit_local, local_batch)):
        pending = [m for m in meta if row_key(m) not in done]
        seen += len(meta)
        skipped += len(meta) - len(pending)
        if not _any_process(bool(pending)):
            continue
        out = generator(arrays, jax.random.fold_in(key, index))
        texts = decode_answers(tokenizer, out.tokens, out.lengths, out.finished, e.stop_strings)
        by_key = {row_key(m): text for m, text in zip(meta, texts)}
        store.append(_row(m, by_key[row_key(m)], step, settings) for m in pending)
        generated += len(pending)
        elapsed = time.perf_counter() - start
        rate = generated / elapsed if elapsed > 0 else 0.0
        left = (total - seen) / rate if rate > 0 else float("nan")
        log(
            f"[eval {split}] batch {index + 1}: {seen}/{total} rows, {generated} generated, "
            f"{rate:.2f} rows/s, ~{left:.0f}s left"
        )
    log(f"[eval {split}] {generated} rows generated, {skipped} already stored")

    if count > 1:
        multihost_utils.sync_global_devices("emollm_eval_generated")
    rows = _all_rows(out_dir, store)
    metrics = compute_metrics(rows)
    dropped = _dropped(_expected_per_task(source, limit_local, count), rows)
    if any(dropped.values()):
        log(f"[eval {split}] records left out of the scores (refused by the pipeline): {dropped}")
    name = e.model_name or resolved(checkpoint).name + ("" if step is None else f"@{step}")
    table = markdown_table(metrics, model=name)
    paths: dict[str, AnyPath] = {}
    if process == 0:
        meta = {
            "checkpoint": str(checkpoint),
            "checkpoint_step": step,
            "weights": evaluated_weights(checkpoint, config, step),
            "split": split,
            "rows": metrics.n,
            "eval": config.eval.to_dict(),
            "eval_batch_size": config.data.eval_batch_size,
            "processes": count,
            "devices": jax.device_count(),
            "settings": settings,
            "dropped_per_task": dropped,
        }
        paths = write_results(out_dir, metrics, model=name, meta=meta, plots=e.plots)
    return EvalResult(metrics, paths, out_dir, generated, skipped, table)
