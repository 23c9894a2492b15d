"""What trains and how: stages, LoRA, gradient accumulation, non-finite steps, the loss."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from emollm_jax.checkpoint.manager import RunCheckpoints
from emollm_jax.train.loop import NonFiniteError, Trainer
from emollm_jax.train.loss import loss_sums
from emollm_jax.train.optimizer import decay_mask
from tests.train.helpers import train_config

ONE = {"data": 1, "fsdp": 1, "tensor": 1}


def _paths(state):
    return {"/".join(map(str, p)) for p, _ in nnx.to_flat_state(state)}


def test_loss_sums_count_only_assistant_targets():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((2, 5, 7)).astype(np.float32)
    labels = np.array([[-100, -100, 3, 4, -100], [-100, 1, -100, -100, 6]])
    total, count = loss_sums(jnp.asarray(logits), jnp.asarray(labels))
    expected, n = 0.0, 0
    for b in range(2):
        for t in range(4):
            target = labels[b, t + 1]
            if target != -100:
                logp = logits[b, t] - np.log(np.exp(logits[b, t]).sum())
                expected -= logp[target]
                n += 1
    assert count == n == 4
    np.testing.assert_allclose(total, expected, rtol=1e-5)


def test_stage1_trains_only_the_projector_and_stage2_adds_the_llm(tmp_path, small_emobench):
    t1 = Trainer(
        train_config(small_emobench, **{"train.stage": 1, "mesh.shape": ONE}),
        tmp_path / "s1",
        devices=jax.devices()[:1],
    )
    assert _paths(t1.state.trainable) and all(
        p.startswith("projector/") for p in _paths(t1.state.trainable)
    )
    frozen_before = jax.device_get(t1.state.frozen)
    trainable_before = jax.device_get(t1.state.trainable)
    t1.train_step(next(t1.iterator))
    for a, b in zip(
        jax.tree.leaves(frozen_before), jax.tree.leaves(jax.device_get(t1.state.frozen))
    ):
        np.testing.assert_array_equal(a, b)
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(
            jax.tree.leaves(trainable_before), jax.tree.leaves(jax.device_get(t1.state.trainable))
        )
    )
    # the optimizer holds moments for the projector only
    n_trainable = sum(x.size for x in jax.tree.leaves(t1.state.trainable))
    n_opt = sum(x.size for x in jax.tree.leaves(t1.state.opt_state) if x.ndim)
    assert n_opt == 2 * n_trainable
    t1.close()

    t2 = Trainer(
        train_config(small_emobench, **{"train.stage": 2, "mesh.shape": ONE}),
        tmp_path / "s2",
        devices=jax.devices()[:1],
    )
    paths = _paths(t2.state.trainable)
    assert any(p.startswith("language_model/") for p in paths)
    assert not any(p.startswith("vision_tower/") for p in paths)
    t2.close()


def test_lora_trains_adapters_and_projector_only(tmp_path, small_emobench):
    cfg = train_config(small_emobench, **{"mesh.shape": ONE, "model.lora": {"rank": 4}})
    trainer = Trainer(cfg, tmp_path, devices=jax.devices()[:1])
    paths = _paths(trainer.state.trainable)
    llm = [p for p in paths if p.startswith("language_model/")]
    assert llm and all(p.endswith(("lora_a", "lora_b")) for p in llm)
    assert any(p.startswith("projector/") for p in paths)
    trainer.close()


@pytest.mark.slow  # over ~8 s here
def test_gradient_accumulation_matches_one_big_batch(tmp_path, small_emobench):
    results = []
    # Adam's first update is lr * g / (|g| + eps): with the default eps 1e-8 it is lr * sign(g),
    # and a coordinate whose gradient is ~1e-8 flips with summation order. eps 1e-3 makes the
    # update a smooth function of the gradient, so the parameters compare the gradients.
    for accum in (1, 4):
        overrides = {"mesh.shape": ONE, "train.grad_accum_steps": accum, "train.eps": 1e-3}
        cfg = train_config(small_emobench, **overrides)
        trainer = Trainer(cfg, tmp_path / str(accum), devices=jax.devices()[:1])
        metrics = jax.device_get(trainer.train_step(next(trainer.iterator)))
        results.append((metrics, jax.device_get(trainer.state.trainable)))
        trainer.close()
    (m1, p1), (m4, p4) = results
    np.testing.assert_allclose(m4["loss"], m1["loss"], rtol=1e-5)
    np.testing.assert_allclose(m4["grad_norm"], m1["grad_norm"], rtol=1e-4)
    for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(p4)):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_weight_decay_skips_norms_biases_and_vectors(tmp_path, small_emobench):
    trainer = Trainer(
        train_config(small_emobench, **{"mesh.shape": ONE}), tmp_path, devices=jax.devices()[:1]
    )
    mask = {
        "/".join(map(str, p)): v.get_value()
        for p, v in nnx.to_flat_state(decay_mask(trainer.state.trainable))
    }
    assert mask["language_model/layers/attn/q/kernel"] is True
    assert mask["language_model/embed_tokens/embedding"] is True
    assert mask["language_model/layers/input_norm/scale"] is False
    assert mask["projector/linear_1/bias"] is False
    trainer.close()


def test_nonfinite_steps_are_skipped_then_stop_the_run_after_a_checkpoint(tmp_path, small_emobench):
    # An absurd learning rate turns the weights to inf after the first update; every later
    # step is non-finite, skipped and counted until the limit stops the run.
    cfg = train_config(
        small_emobench,
        **{
            "mesh.shape": ONE,
            "train.learning_rate": 1e30,
            "train.warmup_steps": 0,
            "train.grad_clip_norm": 1e30,
            "train.max_consecutive_nonfinite": 2,
            "train.steps": 20,
            "checkpoint.every_steps": 100,
        },
    )
    trainer = Trainer(cfg, tmp_path, devices=jax.devices()[:1])
    with pytest.raises(NonFiniteError, match="max_consecutive_nonfinite=2"):
        trainer.train()
    trainer.close()
    step = RunCheckpoints(tmp_path / "checkpoints", read_only=True).latest_step()
    assert step is not None and step < 20
