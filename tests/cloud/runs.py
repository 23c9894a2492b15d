"""Steps the end-to-end runs in a bucket share (``test_*_end_to_end.py``)."""

import json

from etils import epath


def rows(path) -> list[dict]:
    """The JSON rows of a ``.jsonl`` file, local or in a bucket."""
    return [json.loads(line) for line in epath.Path(path).read_text().splitlines()]


def evaluate_in_place(cfg, run: str) -> None:
    """Evaluate run ``run`` on a few test examples and check what it wrote to
    ``<run>/eval/test``: the results, one prediction per example generated, the confusion
    plots, and no lock left behind."""
    from emollm_jax.inference.run import evaluate_generation

    cfg.data.eval_batch_size = 4
    cfg.eval.limit = 4
    cfg.eval.max_new_tokens = 4
    result = evaluate_generation(cfg, run, "test")
    out = epath.Path(run) / "eval" / "test"
    assert result.out_dir == out
    assert json.loads((out / "results.json").read_text())["meta"]
    assert len(rows(out / "predictions.jsonl")) == result.generated > 0
    assert list(out.glob("confusion_*.png"))
    assert not (out / ".lock").exists()
