"""An option-likelihood evaluation run: every option of every closed-answer record scored by one
batched forward (``option_scorer``), the best one taken as the answer
(``emollm_jax.eval.likelihood``), scored and written like a generation run.

Records come from the same split and prompt hook as generation (EmoPrompt's eval prompt when
it is on; ``eval.limit`` keeps the same first records), restricted to
``emollm_jax.eval.likelihood.LIKELIHOOD_TASKS``. Each (record, option) pair is one
training-format row (the prompt, then the option's assistant turn as the target, tokenized by
the pipeline's encoder in train mode); rows of several records share a batch of ``data.eval_batch_size`` rows (rounded up
to what the mesh's batch axes divide), padded by repeating a row, so a program is compiled once
per (sequence, frame) bucket. A record whose option rows the encoder refuses (too long, bad
media) is skipped and counted. Output, in ``<eval folder>/likelihood``: ``predictions.jsonl``
(every option's summed log-probability and token count), ``results.json``, ``results.md``,
confusion PNGs. Not resumable (one forward per option is cheap); files are written whole, via a
temporary file renamed into place.

The continuation's form follows the config (``scoring_form``; results and table name it):
``label`` (bare-label training: `` <option></s>``), ``answer_line`` (rationale after the answer:
``Answer: <option>`` right after the prompt) and ``after_own_rationale`` (rationale before the
answer). In the last form the model first greedy-decodes every record's reply until the answer
marker ``Answer:`` (``own_rationales``, batched like generation), then each option is scored as
``Answer: <option></s>`` after the model's own text: the rationale and marker are part of the
row but not of the scored tokens (``mask_through_marker``), and the same jitted scorer runs.
A record whose reply reaches ``eval.max_new_tokens`` before the marker (``truncated``), or
stops without one (``no_marker``), is counted and left out of the scores, never scored on a
rationale it did not finish.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Iterator

import numpy as np

from emollm_jax.data import batching
from emollm_jax.data.example_encoder import IGNORE
from emollm_jax.data.pipeline import eval_batches, make_encoder, open_source
from emollm_jax.emoprompt import templates
from emollm_jax.emoprompt.hook import last_turn
from emollm_jax.errors import ConfigError
from emollm_jax.eval.likelihood import LIKELIHOOD_TASKS, NORMS, likelihood_row
from emollm_jax.eval.metrics import Metrics, compute_metrics
from emollm_jax.eval.result_files import markdown_table, write_results
from emollm_jax.generate import GenerateConfig, Generator, SamplingConfig
from emollm_jax.generate.text import decode_answers, stop_settings
from emollm_jax.inference.option_scorer import OptionScorer
from emollm_jax.paths import AnyPath, as_path, is_url
from emollm_jax.tasks import labels_for

PREDICTIONS = "predictions.jsonl"
MARKER = templates.ANSWER_LINE.split("{")[0].strip()  # "Answer:"
FORMS = ("label", "answer_line", "after_own_rationale")
# Why a record of the after_own_rationale form was not scored.
UNSCORED = ("truncated", "no_marker")


def answer_text(option: str, rationale_targets: bool) -> str:
    """The assistant turn scored for ``option``: the bare label, or EmoPrompt's answer line."""
    return templates.ANSWER_LINE.format(label=option) if rationale_targets else option


def without_end_token(labels: np.ndarray) -> np.ndarray:
    """A copy of training-format ``labels`` whose last target token is no longer scored."""
    out = labels.copy()
    targets = np.flatnonzero(out != IGNORE)
    if len(targets):
        out[targets[-1]] = IGNORE
    return out


def option_record(record: dict, text: str) -> dict:
    """A copy of ``record`` whose last assistant turn is ``text`` (one is appended if none)."""
    out = copy.deepcopy(record)
    turns = out["conversations"]
    at = last_turn(turns, "gpt")
    if at is None:
        turns.append({"from": "gpt", "value": text})
    else:
        turns[at] = {**turns[at], "value": text}
    return out


@dataclasses.dataclass
class LikelihoodResult:
    metrics: Metrics
    paths: dict[str, AnyPath]
    out_dir: AnyPath
    rows: list[dict]
    skipped: int  # records whose option rows the encoder refused
    table: str
    form: str = "label"  # one of FORMS
    unscored: dict[str, int] = dataclasses.field(default_factory=dict)  # UNSCORED -> records


@dataclasses.dataclass(frozen=True)
class OwnRationale:
    """A record's greedy reply up to the answer marker: ``prefix`` is the text before it
    (None unless ``status`` is "ok"); ``status`` is "ok" or one of ``UNSCORED``; ``text`` the
    whole decoded reply."""

    prefix: str | None
    status: str
    text: str = ""


def split_at_marker(text: str, hit_limit: bool, marker: str = MARKER) -> OwnRationale:
    """The reply ``text`` cut before its first ``marker``; without one, "truncated" if the
    reply ran into the token limit (``hit_limit``), else "no_marker"."""
    at = text.find(marker)
    if at >= 0:
        return OwnRationale(text[:at], "ok", text)
    return OwnRationale(None, "truncated" if hit_limit else "no_marker", text)


@dataclasses.dataclass
class _Pending:
    """A record whose options are being scored."""

    meta: dict
    logprobs: list[float | None]
    tokens: list[int | None]


def _answer_settings(config) -> tuple[bool, bool]:
    """(rationale targets on, rationale after the answer) from ``config.emoprompt``."""
    e = config.get("emoprompt")
    rationale = bool(e is not None and e.rationale_targets)
    return rationale, rationale and e.get("rationale_position") == "after_answer"


def scoring_form(config) -> str:
    """Which continuation ``config``'s training makes the right one to score (``FORMS``)."""
    rationale, answer_first = _answer_settings(config)
    if not rationale:
        return "label"
    return "answer_line" if answer_first else "after_own_rationale"


def mask_through_marker(example: dict, tokenizer, marker: str = MARKER) -> dict | None:
    """``example`` with its target tokens up to and including ``marker`` no longer scored (the
    model's own rationale and the marker), or None if its target holds no marker."""
    targets = np.flatnonzero(example["labels"] != IGNORE)
    ids = [int(t) for t in example["input_ids"][targets]]

    def has_marker(j: int) -> bool:
        return marker in tokenizer.decode(ids[:j], skip_special_tokens=True)

    if not has_marker(len(ids)):
        return None
    low, high = 1, len(ids)  # the shortest target prefix whose text holds the marker
    while low < high:
        mid = (low + high) // 2
        low, high = (low, mid) if has_marker(mid) else (mid + 1, high)
    labels = example["labels"].copy()
    labels[targets[:low]] = IGNORE
    return example | {"labels": labels}


def own_rationales(
    config,
    split: str,
    model,
    prompt_hook,
    tokenizer,
    *,
    ids,
    mesh=None,
    rules=(),
    log=print,
    marker: str = MARKER,
) -> dict[str, OwnRationale]:
    """The model's greedy reply to each record of ``ids`` (eval prompts, batched like
    generation), decoded until the answer marker: ``{id: OwnRationale}``."""
    e = config.eval
    stops = stop_settings(
        tokenizer, model.config.text.eos_token_ids, e.stop_tokens, (*e.stop_strings, marker)
    )
    gen = GenerateConfig(max_new_tokens=e.max_new_tokens, sampling=SamplingConfig(), **stops)
    generator = Generator(model, gen, mesh=mesh, rules=rules)
    wanted, out = set(ids), {}
    batches = eval_batches(config, split=split, prompt_hook=prompt_hook, tokenizer=tokenizer)
    for arrays, meta in batches:
        if not any(m["id"] in wanted for m in meta):
            if wanted <= set(out):
                break
            continue
        g = generator(arrays)
        tokens, lengths, finished = (np.asarray(x) for x in (g.tokens, g.lengths, g.finished))
        texts = decode_answers(tokenizer, tokens, lengths, finished, e.stop_strings)
        for m, text, n, f in zip(meta, texts, lengths, finished):
            if m["id"] in wanted:
                hit_limit = not f and int(n) >= e.max_new_tokens
                out[m["id"]] = split_at_marker(text, hit_limit, marker)
        log(f"[likelihood {split}] rationales of {len(out)}/{len(wanted)} records generated")
        if wanted <= set(out):
            break
    return out


def _record_ids(config, split: str) -> list[str]:
    """Ids of the closed-answer records ``option_rows`` visits."""
    source = open_source(config.data, split)
    n = min(len(source), config.eval.limit or len(source))
    return [source[i]["id"] for i in range(n) if source[i]["task"] in LIKELIHOOD_TASKS]


def option_rows(
    config,
    split: str,
    prompt_hook,
    tokenizer,
    rationales: dict[str, OwnRationale] | None = None,
    marker: str = MARKER,
) -> Iterator[tuple[dict, list[dict]]]:
    """Per closed-answer record of ``split`` (the first ``eval.limit`` records, if set): its meta
    and one encoded training-format example per option, or an empty list if one is refused.
    With ``rationales`` (the after_own_rationale form) each option follows the record's own
    rationale and ``marker`` (``<rationale><marker> <option>``); a record without a finished
    rationale gets an empty list and ``meta["unscored"]``."""
    encoder = make_encoder(config, "train", tokenizer=tokenizer, prompt_hook=None)
    rationale, answer_first = _answer_settings(config)
    source = open_source(config.data, split)
    n = min(len(source), config.eval.limit or len(source))
    for i in range(n):
        record = source[i]
        if record["task"] not in LIKELIHOOD_TASKS:
            continue
        options = list(labels_for(record["task"], record.get("options")))
        meta = {"id": record["id"], "task": record["task"], "answer": record["answer"]}
        meta["options"] = options
        prompted = prompt_hook(copy.deepcopy(record)) if prompt_hook else record
        texts = [answer_text(o, rationale) for o in options]
        if rationales is not None:
            own = rationales.get(record["id"], OwnRationale(None, "no_marker"))
            if own.status != "ok":
                yield meta | {"unscored": own.status}, []
                continue
            texts = [f"{own.prefix}{marker} {o}" for o in options]
        examples = [encoder(option_record(prompted, text)) for text in texts]
        if rationales is not None and all(ex is not None for ex in examples):
            examples = [mask_through_marker(ex, tokenizer, marker) for ex in examples]
        if any(ex is None for ex in examples):
            yield meta, []
            continue
        if answer_first:
            examples = [ex | {"labels": without_end_token(ex["labels"])} for ex in examples]
        yield meta, examples


def _collate(config, examples: list[dict], rows: int, pad_id: int) -> dict:
    padded = examples + [examples[0]] * (rows - len(examples))
    d = config.data
    return batching.collate_train(
        padded, seq_buckets=d.seq_buckets, frame_buckets=d.frame_buckets, pad_id=pad_id
    )


def score_options(
    config, split: str, scorer: OptionScorer, prompt_hook, tokenizer, *, step, log,
    rationales: dict[str, OwnRationale] | None = None, unscored: dict[str, int] | None = None,
    marker: str = MARKER,
) -> tuple[list[dict], int]:
    """Prediction rows of every closed-answer record, and the number of records the encoder
    refused; records left unscored for want of a finished rationale are counted by reason
    into ``unscored``."""
    norm = config.eval.likelihood_norm
    rows_per_batch = math.ceil(config.data.eval_batch_size / scorer.rows_multiple)
    rows_per_batch *= scorer.rows_multiple
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    pending: list[_Pending] = []
    queue: list[tuple[_Pending, int, dict]] = []  # (record, option index, example)
    out: list[dict] = []
    skipped = batches = 0
    start = time.perf_counter()

    def run(chunk):
        nonlocal batches
        batch = _collate(config, [ex for _, _, ex in chunk], rows_per_batch, pad_id)
        logprobs, tokens = scorer(batch)
        for k, (p, j, _) in enumerate(chunk):
            p.logprobs[j], p.tokens[j] = float(logprobs[k]), int(tokens[k])
        while pending and None not in pending[0].logprobs:
            p = pending.pop(0)
            out.append(likelihood_row(p.meta, p.logprobs, p.tokens, norm, step))
        batches += 1
        rate = len(out) / max(time.perf_counter() - start, 1e-9)
        log(f"[likelihood {split}] batch {batches}: {len(out)} records, {rate:.1f} records/s")

    for meta, examples in option_rows(config, split, prompt_hook, tokenizer, rationales, marker):
        if "unscored" in meta and unscored is not None:
            unscored[meta["unscored"]] = unscored.get(meta["unscored"], 0) + 1
            continue
        if not examples:
            skipped += 1
            continue
        p = _Pending(meta, [None] * len(examples), [None] * len(examples))
        pending.append(p)
        queue += [(p, j, ex) for j, ex in enumerate(examples)]
        while len(queue) >= rows_per_batch:
            run(queue[:rows_per_batch])
            queue = queue[rows_per_batch:]
    if queue:
        run(queue)
    return out, skipped


def write_rows(path: AnyPath, rows: list[dict]) -> None:
    """``rows`` as JSON lines, written to a temporary file and renamed over ``path`` (on
    cloud storage, one object write: atomic there)."""
    if is_url(path):
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        return
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def check_likelihood_config(e) -> None:
    if e.likelihood_norm not in NORMS:
        raise ConfigError(
            "eval.likelihood_norm", f"{e.likelihood_norm!r} not in {NORMS}", value=e.likelihood_norm
        )


def evaluate_likelihood(
    config,
    split: str,
    out_dir: str | os.PathLike,
    *,
    model,
    step: int | None,
    name: str,
    prompt_hook: Callable[[dict], dict] | None,
    tokenizer,
    mesh=None,
    rules=(),
    meta: dict | None = None,
    log: Callable[[str], None] = print,
) -> LikelihoodResult:
    """Score ``split``'s closed-answer records by option likelihood; write into ``out_dir``."""
    check_likelihood_config(config.eval)
    out = as_path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    form = scoring_form(config)
    rationales = None
    unscored = dict.fromkeys(UNSCORED, 0) if form == "after_own_rationale" else {}
    if form == "after_own_rationale":
        ids = _record_ids(config, split)
        rationales = own_rationales(
            config, split, model, prompt_hook, tokenizer, ids=ids, mesh=mesh, rules=rules, log=log
        )
    scorer = OptionScorer(model, mesh=mesh, rules=rules)
    rows, skipped = score_options(
        config, split, scorer, prompt_hook, tokenizer, step=step, log=log,
        rationales=rationales, unscored=unscored,
    )
    if not rows and not any(unscored.values()):
        raise ValueError(f"split {split!r} has no usable record of {', '.join(LIKELIHOOD_TASKS)}")
    log(f"[likelihood {split}] {len(rows)} records scored ({form}), {skipped} skipped, "
        f"unscored: {unscored or 'none'}")
    write_rows(out / PREDICTIONS, rows)
    metrics = compute_metrics(rows)
    meta = dict(meta or {}) | {"mode": "likelihood", "skipped": skipped, "rows": len(rows)}
    meta |= {"form": form, "unscored": unscored}
    paths = write_results(out, metrics, model=name, meta=meta, plots=config.eval.plots)
    paths["predictions"] = out / PREDICTIONS
    table = markdown_table(metrics, name)
    return LikelihoodResult(metrics, paths, out, rows, skipped, table, form, unscored)
