"""config.train.profile: which steps the trace covers, bad values named, and on CPU the trace
files exist under the workdir after a short run."""

import pytest
from ml_collections import config_dict

from emollm_jax.errors import ConfigError
from emollm_jax.train import profile
from emollm_jax.train.loop import Trainer
from tests.train.helpers import train_config


def _cfg(start, num):
    return config_dict.ConfigDict(dict(start_step=start, num_steps=num))


def test_trace_covers_exactly_the_asked_steps(monkeypatch, tmp_path):
    events = []
    monkeypatch.setattr(profile.jax.profiler, "start_trace", lambda d: events.append(("start", d)))
    monkeypatch.setattr(profile.jax.profiler, "stop_trace", lambda: events.append(("stop",)))
    monkeypatch.setattr(profile.jax, "block_until_ready", lambda x: x)
    profiler = profile.StepProfiler(_cfg(3, 2), tmp_path)
    for step in range(1, 8):
        events.append(step)
        profiler.before(step)
        profiler.after(step, None)
    profiler.close()
    assert events == [1, 2, 3, ("start", str(tmp_path / "tensorboard")), 4, ("stop",), 5, 6, 7]


def test_resumed_past_the_start_traces_nothing_and_off_is_off(monkeypatch, tmp_path):
    monkeypatch.setattr(profile.jax.profiler, "start_trace", lambda d: pytest.fail("traced"))
    for cfg, steps in ((_cfg(3, 2), range(6, 9)), (_cfg(1, 0), range(1, 4))):
        profiler = profile.StepProfiler(cfg, tmp_path)
        for step in steps:
            profiler.before(step)
            profiler.after(step, None)


def test_bad_values_are_named(tmp_path):
    with pytest.raises(ConfigError, match="config.train.profile.num_steps"):
        profile.StepProfiler(_cfg(3, -1), tmp_path)
    with pytest.raises(ConfigError, match="config.train.profile.start_step"):
        profile.StepProfiler(_cfg(0, 2), tmp_path)


@pytest.mark.slow
def test_trace_files_written_on_cpu(tmp_path, small_emobench):
    cfg = train_config(small_emobench, **{"train.steps": 3, "train.profile.start_step": 2,
                                          "train.profile.num_steps": 1})  # fmt: skip
    trainer = Trainer(cfg, tmp_path)
    try:
        trainer.train()
    finally:
        trainer.close()
    traces = list((tmp_path / "tensorboard" / "plugins" / "profile").glob("*/*.xplane.pb"))
    assert len(traces) == 1 and traces[0].stat().st_size > 0
