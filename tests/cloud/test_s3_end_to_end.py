"""A run whose every output lives in an ``s3://`` bucket (the loopback moto server): train the
tiny LLaVA two steps, resume it from its checkpoint in the bucket to a third, evaluate it, convert
it to a Hugging Face folder in the bucket and back through Orbax, both conversions reading and
writing the bucket."""

import json
import pathlib

import numpy as np
import pytest
from etils import epath

from tests.cloud.runs import evaluate_in_place, rows
from tests.train.helpers import train_config

pytestmark = pytest.mark.slow


def _tensors(url):
    from emollm_jax.convert.safetensors_io import TensorSource
    from emollm_jax.paths import local_folder

    with local_folder(url) as folder:
        return dict(TensorSource(folder).items()), json.loads((folder / "config.json").read_text())


def test_train_resume_evaluate_convert_in_an_s3_bucket(s3_dir, small_emobench):
    import s3fs

    from emollm_jax.convert import cli
    from emollm_jax.train import loop as train_loop

    run = f"{s3_dir}/run"
    cfg = train_config(small_emobench, **{"train.steps": 2, "log.tensorboard": True})
    train_loop.run(cfg, run)
    root = epath.Path(run)
    keys = s3fs.S3FileSystem(skip_instance_cache=True).find(run.split("://", 1)[1])
    assert any(k.endswith("/checkpoints/2/commit_success.txt") for k in keys)
    assert any("/checkpoints/2/params/" in k for k in keys)
    assert [r["step"] for r in rows(f"{run}/metrics.jsonl")] == [1, 2]
    assert list((root / "tensorboard").glob("events.out.tfevents.*"))
    assert not (root / ".lock").exists()  # released
    assert not pathlib.Path("s3:").exists()  # nothing went to a local folder named like it

    cfg = train_config(small_emobench, **{"train.steps": 3, "log.tensorboard": True})
    train_loop.run(cfg, run)
    restores = [e for e in rows(f"{run}/events.jsonl") if e["event"] == "restore"]
    assert [(e["tier"], e["step"]) for e in restores] == [("persistent", 2)]
    assert sorted(int(p.name) for p in (root / "checkpoints").iterdir()) == [2, 3]
    assert [r["step"] for r in rows(f"{run}/metrics.jsonl")] == [1, 2, 3]

    evaluate_in_place(cfg, run)

    export, again, back = (f"{s3_dir}/{name}" for name in ("export", "orbax", "export2"))
    assert cli.main(["orbax-to-hf", run, export]) == 0
    assert cli.main(["hf-to-orbax", export, again]) == 0
    assert (epath.Path(again) / "checkpoints" / "0" / "commit_success.txt").exists()
    assert cli.main(["orbax-to-hf", again, back]) == 0
    (before, before_cfg), (after, after_cfg) = _tensors(export), _tensors(back)
    assert before and sorted(before) == sorted(after)
    for name in before:
        assert before[name].dtype == after[name].dtype, name
        assert np.array_equal(before[name], after[name]), name
    before_cfg.pop("transformers_version", None)
    after_cfg.pop("transformers_version", None)
    assert before_cfg == after_cfg
