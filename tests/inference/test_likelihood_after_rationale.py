"""Option likelihood after the model's own rationale (rationale-first EmoPrompt): the scored
tokens start right after the answer marker the model generated, and a record whose reply never
reaches the marker is counted, not scored. On a random tiny model and a 12-record mini EmoBench."""

import numpy as np
import pytest

from emollm_jax.data.example_encoder import IGNORE
from emollm_jax.data.mini import make_mini_emobench
from emollm_jax.data.pipeline import load_tokenizer
from emollm_jax.eval.metrics import compute_metrics
from emollm_jax.inference import likelihood_run as lr
from emollm_jax.inference.modes import modes_table
from emollm_jax.inference.option_scorer import OptionScorer
from emollm_jax.inference.run import eval_prompt_hook
from emollm_jax.models.build import build_model
from emollm_jax.config.model import from_config_dict
from tests.data.conftest import tiny_config

SIZES = {"train": 0, "validation": 0, "test": 12}
MAX_NEW = 6


def test_split_at_marker():
    assert lr.split_at_marker("The mouth smiles.\nAnswer: joy", False) == lr.OwnRationale(
        "The mouth smiles.\n", "ok", "The mouth smiles.\nAnswer: joy"
    )
    assert lr.split_at_marker("The mouth", True).status == "truncated"
    assert lr.split_at_marker("The mouth.", False).status == "no_marker"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    data = make_mini_emobench.build(tmp_path_factory.mktemp("own_rationale"), sizes=SIZES)
    c = tiny_config()
    c.data.dir = str(data)
    c.data.eval_batch_size = 4
    c.data.seq_buckets = (272, 400)
    c.emoprompt.guiding_prompts = True
    c.emoprompt.rationale_targets = True  # rationale, then "Answer: <label>"
    c.eval.max_new_tokens = MAX_NEW
    model = build_model(from_config_dict(c.model), 0)
    tokenizer = load_tokenizer(c.data.tokenizer)
    hook = eval_prompt_hook(c)
    ids = lr._record_ids(c, "test")
    assert lr.scoring_form(c) == "after_own_rationale"
    return c, model, tokenizer, hook, ids


def test_unfinished_rationales_are_counted_not_scored(setup):
    c, model, tokenizer, hook, ids = setup
    own = lr.own_rationales(c, "test", model, hook, tokenizer, ids=ids, log=lambda _: None)
    assert set(own) == set(ids) and len(ids) == 10
    # A random model writes no "Answer:" in 6 tokens: every record is counted, none scored.
    assert all(o.status in lr.UNSCORED and o.prefix is None for o in own.values())
    assert sum(o.status == "truncated" for o in own.values()) >= 1
    unscored: dict = {}
    rows, skipped = lr.score_options(
        c, "test", OptionScorer(model), hook, tokenizer, step=None, log=lambda _: None,
        rationales=own, unscored=unscored,
    )
    assert rows == [] and skipped == 0
    assert sum(unscored.values()) == len(ids)
    forms = {"likelihood": lr.scoring_form(c)}
    table = modes_table({"likelihood": compute_metrics(rows)}, "tiny", forms)
    assert "| tiny (likelihood after own rationale) |" in table


def test_scored_tokens_start_after_the_models_own_marker(setup):
    c, model, tokenizer, hook, ids = setup
    quiet = lambda _: None  # noqa: E731
    first = lr.own_rationales(c, "test", model, hook, tokenizer, ids=ids, log=quiet)
    # The random model writes no "Answer:"; take words it does write as the marker, so that its
    # own greedy reply reaches the marker and the rationale before it is its own text.
    rid, reply = max(((i, o.text) for i, o in first.items()), key=lambda x: len(x[1].split()))
    marker = reply.split()[-1]
    own = lr.own_rationales(c, "test", model, hook, tokenizer, ids=[rid], log=quiet, marker=marker)
    assert own[rid].status == "ok" and reply.startswith(own[rid].prefix + marker)
    rationales = {rid: own[rid]}
    (meta, examples), = [
        (m, ex) for m, ex in lr.option_rows(c, "test", hook, tokenizer, rationales, marker)
        if m["id"] == rid
    ]
    for option, ex in zip(meta["options"], examples):
        scored = np.flatnonzero(ex["labels"] != IGNORE)
        before = tokenizer.decode(ex["input_ids"][: scored[0]].tolist(), skip_special_tokens=True)
        after = tokenizer.decode(ex["input_ids"][scored].tolist(), skip_special_tokens=True)
        # Everything up to the model's marker is context; the option (and end token) is scored.
        words = " ".join((own[rid].prefix + marker).split())
        assert " ".join(before.split()).endswith(words), (before, words)
        assert after.strip() == option
        assert np.all(np.diff(scored) == 1)  # one contiguous continuation
    rows, _ = lr.score_options(
        c, "test", OptionScorer(model), hook, tokenizer, step=None, log=quiet,
        rationales=rationales, marker=marker,
    )
    (row,) = rows
    assert row["id"] == rid and row["parsed"] in row["options"]
    counts = [int(np.sum(ex["labels"] != IGNORE)) for ex in examples]
    assert row["tokens"] == counts
