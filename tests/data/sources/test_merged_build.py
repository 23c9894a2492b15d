"""A merged build of all eight sources feeds one training step and one EmoBench evaluation."""

import math

import jax
import pytest

from emollm_jax.config.model import from_config_dict
from emollm_jax.data.sources import builder
from emollm_jax.inference.run import evaluate_generation
from emollm_jax.models.build import build_model
from emollm_jax.train.loop import Trainer
from tests.data.conftest import tiny_config
from tests.data.sources.fixtures import MAKERS
from tests.train.helpers import train_config

pytestmark = pytest.mark.slow  # compiles a train step and a decoder (~30 s on 2 cores)


@pytest.fixture(scope="module")
def merged(tmp_path_factory):
    root = tmp_path_factory.mktemp("merged")
    for name, make in MAKERS.items():
        make(root / name)
    tally = builder.build({n: root / n for n in MAKERS}, root / "out", seed=0)
    return root / "out", tally


def test_merged_build_trains_one_step_and_evaluates(merged, tmp_path):
    out, tally = merged
    assert {s for _, s, _ in tally.records} == set(MAKERS)
    # seq 512: MIntRec's twenty listed intents take ~300 tokens of the tiny test tokenizer
    config = train_config(out, **{"mesh.shape": {"data": 1, "fsdp": 1, "tensor": 1}})
    config.data.batch_size = 4
    config.data.seq_buckets = (512,)
    config.data.strict = True
    trainer = Trainer(config, tmp_path / "run", devices=jax.devices()[:1])
    batch = next(trainer.iterator)
    assert batch["input_ids"].shape == (4, 512)
    metrics = jax.device_get(trainer.train_step(batch))
    assert math.isfinite(float(metrics["loss"])) and trainer.step == 1
    trainer.close()

    config = tiny_config()  # the default mesh: every CPU device, data parallel
    config.data.dir = str(out)
    config.data.strict = True
    config.data.eval_batch_size = 4
    config.data.seq_buckets = (256, 512)
    config.eval.max_new_tokens = 4
    model = build_model(from_config_dict(config.model), 0)
    result = evaluate_generation(
        config, "tiny", "test", str(tmp_path / "eval"), model=model, log=print
    )
    test_records = tally.per_split()["test"]
    assert result.metrics.n == test_records
    sources_in_test = {s for _, s, sp in tally.records if sp == "test"}
    assert sources_in_test == set(MAKERS) - {"memotion"}  # Memotion 7k has train rows only
    assert set(result.metrics.tasks) == {t for t, _, sp in tally.records if sp == "test"}
