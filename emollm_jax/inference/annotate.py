"""Write rationales for an EmoBench split with a teacher model told the ground truth.

    emollm annotate --config configs/emollm_tiny.py --teacher DIR \\
        [--split train] [--out FILE] [--max_new_tokens 96] [--limit N] [--config.a.b=v ...]

``DIR`` is any model the project loads (``emollm_jax.inference.load``): a Hugging Face folder
(one with a ``config.json``) or an Orbax training run (its latest complete checkpoint);
``config.model`` must describe it (the prompts'
image tokens are built from it) and ``config.data`` names the split's folder, tokenizer and
chat template. Writes ``FILE`` (default ``<data.dir>/<split>.rationales.jsonl``), one
``{id, task, answer, rationale}`` per kept record, ``FILE`` with ``.dropped.jsonl`` (the
teacher's text of every dropped record and why) and ``.summary.json`` (counts); train with
``--config.emoprompt.rationales_file=FILE --config.emoprompt.rationale_targets=True``.

Our choices (the paper's "correct direction" is the ground truth given to the teacher):

- The teacher sees the record's instruction plus the task's cues and ``The correct answer is
  <label>``, and is asked for one or two sentences ending in ``Answer: <label>``
  (``templates.TEACHER``); decoding is greedy, ``config.eval``'s stop tokens and strings apply.
- A rationale whose last line is not ``Answer: <gold label>`` is dropped and counted
  (``rationales.check``; reasons ``no_answer_line``, ``wrong_label``, ``empty_rationale``).
  Records without a task cannot be checked and are counted as ``no_task``.
- Generation is ``emollm_jax.generate`` over the data pipeline's eval batches, on one JAX
  process.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path

from emollm_jax.config.model import from_config_dict
from emollm_jax.data.data_config import check_data_config
from emollm_jax.data.pipeline import eval_batches, load_tokenizer
from emollm_jax.emoprompt import rationales, templates
from emollm_jax.emoprompt.hook import has_video, last_turn
from emollm_jax.generate import GenerateConfig, Generator
from emollm_jax.generate.text import decode_answers, stop_settings
from emollm_jax.inference.load import check_model_matches, load_hf_or_run


class TeacherHook:
    """The prompt hook of the teacher: the instruction plus cues and the ground truth."""

    def __call__(self, record: dict) -> dict:
        task = record.get("task")
        turns = record["conversations"]
        asked_at = last_turn(turns, "human", before=last_turn(turns, "gpt"))
        if task is None or asked_at is None:
            return record
        line = templates.teacher_prompt(task, record["answer"], has_video=has_video(record))
        turn = turns[asked_at]
        turns[asked_at] = {**turn, "value": f"{turn['value'].rstrip()}\n{line}"}
        return record


@dataclasses.dataclass
class AnnotateResult:
    kept: int
    dropped: dict[str, int]  # reason -> records
    by_task: dict[str, dict[str, int]]  # task -> {"kept": n, <reason>: n}
    paths: dict[str, Path]


def default_out(config, split: str) -> Path:
    return Path(config.data.dir) / f"{split}.rationales.jsonl"


def _side_file(out: Path, suffix: str) -> Path:
    return out.with_name(out.name.removesuffix(".jsonl") + suffix)


def teacher_generator(config, model, tokenizer, max_new_tokens: int) -> Callable:
    """``(arrays, meta) -> texts``: greedy decoding with ``emollm_jax.generate``."""
    e = config.eval
    stops = stop_settings(tokenizer, model.config.text.eos_token_ids, e.stop_tokens, e.stop_strings)
    generator = Generator(model, GenerateConfig(max_new_tokens=max_new_tokens, **stops))

    def run(arrays, meta):
        out = generator(arrays)
        return decode_answers(tokenizer, out.tokens, out.lengths, out.finished, e.stop_strings)

    return run


def annotate(
    config,
    teacher: str | None,
    split: str = "train",
    out: str | Path | None = None,
    *,
    max_new_tokens: int = 96,
    limit: int = 0,
    model=None,
    generate: Callable | None = None,
    log: Callable[[str], None] = print,
) -> AnnotateResult:
    """Annotate ``split`` (the first ``limit`` records; 0 = all); see the module docstring.

    ``model`` skips loading ``teacher``; ``generate`` (``(arrays, meta) -> texts``) replaces
    the teacher's decoding (tests).
    """
    if max_new_tokens < 1:
        raise ValueError(f"--max_new_tokens must be >= 1, got {max_new_tokens}")
    check_data_config(config.data)  # before the teacher loads
    tokenizer = load_tokenizer(config.data.tokenizer)
    if generate is None:
        if model is None:
            model, _ = load_hf_or_run(teacher, config, what="--teacher")
            check_model_matches(model.config, from_config_dict(config.model))
        generate = teacher_generator(config, model, tokenizer, max_new_tokens)

    out = Path(out) if out else default_out(config, split)
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = {
        "rationales": out,
        "dropped": _side_file(out, ".dropped.jsonl"),
        "summary": _side_file(out, ".summary.json"),
    }
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    seen, start = 0, time.perf_counter()
    batches = eval_batches(config, split=split, prompt_hook=TeacherHook(), tokenizer=tokenizer)
    with open(paths["rationales"], "w") as kept_f, open(paths["dropped"], "w") as dropped_f:
        for arrays, meta in batches:
            if limit and seen >= limit:
                break
            meta = meta[: limit - seen] if limit else meta
            if not meta:
                continue
            texts = generate(arrays, meta)
            for m, text in zip(meta, texts):
                task = m["task"]
                if task is None:
                    rationale, reason = None, "no_task"
                else:
                    rationale, reason = rationales.check(text, m["answer"])
                row = {"id": m["id"], "task": task, "answer": m["answer"]}
                if rationale is None:
                    counts[task or "none"][reason] += 1
                    dropped_f.write(json.dumps({**row, "reason": reason, "text": text}) + "\n")
                else:
                    counts[task]["kept"] += 1
                    kept_f.write(json.dumps({**row, "rationale": rationale}) + "\n")
            seen += len(meta)
            log(f"[annotate {split}] {seen} records, {time.perf_counter() - start:.0f}s")
    by_task = {task: dict(c) for task, c in sorted(counts.items())}
    total = sum(counts.values(), collections.Counter())
    kept = total.pop("kept", 0)
    result = AnnotateResult(kept, dict(sorted(total.items())), by_task, paths)
    summary = {
        "split": split,
        "teacher": str(teacher),
        "records": seen,
        "kept": kept,
        "dropped": result.dropped,
        "by_task": by_task,
    }
    paths["summary"].write_text(json.dumps(summary, indent=2) + "\n")
    log(f"[annotate {split}] kept {kept} of {seen} rationales; dropped {result.dropped}")
    return result


def main(argv: list[str]) -> None:
    from absl import flags

    if len(argv) > 1:
        raise SystemExit(f"unexpected arguments: {' '.join(argv[1:])}")
    f = flags.FLAGS
    annotate(
        f.config,
        f.teacher,
        f.split,
        f.out,
        max_new_tokens=f.max_new_tokens,
        limit=f.limit,
        log=lambda line: print(line, flush=True),
    )


def define_flags() -> None:
    """The command's flags (defined when it runs: importing this module defines none)."""
    from absl import flags
    from ml_collections import config_flags

    config_flags.DEFINE_config_file("config", None, "Experiment config file.", lock_config=True)
    flags.DEFINE_string("teacher", None, "Hugging Face model folder or Orbax training run.")
    flags.DEFINE_string("split", "train", "Split to annotate (train|validation|test).")
    flags.DEFINE_string("out", None, "Output JSONL (default <data.dir>/<split>.rationales.jsonl).")
    flags.DEFINE_integer("max_new_tokens", 96, "Longest rationale, in tokens.")
    flags.DEFINE_integer("limit", 0, "Annotate only the first N records (0 = all).")
    flags.mark_flags_as_required(["config", "teacher"])


if __name__ == "__main__":
    from emollm_jax.cli_errors import run_absl

    define_flags()
    run_absl(main)
