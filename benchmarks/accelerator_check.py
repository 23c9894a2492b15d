"""A short check for a machine with one NVIDIA GPU (under 5 minutes); elsewhere it says so and
exits 0.

1. cuDNN attention (``config.model.attention=cudnn``) against the XLA reference, values and
   gradients, bfloat16, causal, GQA.
2. One training step of a ~1B-parameter text LM (``configs/lm.py`` shapes scaled down: hidden
   2048, 16 layers, 16 heads of 128 with 8 KV heads, MLP 5632, vocabulary 32000) at batch
   ``--batch`` x ``--seq`` in bfloat16 compute over float32 weights, full remat, cuDNN attention,
   the chunked loss: measured (median of ``--steps`` after a warm-up) beside the estimator's
   figure for the same compiled program (``aot.analysis``; the chip's row in ``aot/chips.py``).

    python benchmarks/accelerator_check.py [--batch 8] [--seq 2048] [--steps 5]

Prints one line per check and the ratio estimate / measured; nothing depends on it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time


def _gpu():
    import jax

    try:
        gpus = jax.devices("gpu")
    except RuntimeError:
        return None
    return gpus[0] if gpus else None


def check_attention(settings_cls, attend, self_attention_mask) -> list[str]:
    import jax
    import jax.numpy as jnp
    import numpy as np

    b, t, h, kv, d = 2, 1024, 16, 8, 128
    rng = np.random.default_rng(0)
    q, k, v = (jnp.asarray(rng.normal(size=(b, t, n, d)), jnp.bfloat16) for n in (h, kv, kv))
    mask = self_attention_mask(None, None, causal=True)
    w = jnp.asarray(rng.normal(size=(b, t, h, d)), jnp.float32)

    def run(kind):
        def loss(q, k, v):
            out = attend(q, k, v, mask, d**-0.5, settings_cls(kind))
            return jnp.sum(out.astype(jnp.float32) * w), out

        return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True))(q, k, v)

    (_, out_x), g_x = run("xla")
    (_, out_c), g_c = run("cudnn")
    lines = [f"attention output max |cudnn - xla| = "
             f"{float(jnp.abs(out_c.astype(jnp.float32) - out_x.astype(jnp.float32)).max()):.3g}"]
    for name, a, b_ in zip("qkv", g_c, g_x):
        diff = float(jnp.abs(a.astype(jnp.float32) - b_.astype(jnp.float32)).max())
        scale = float(jnp.abs(b_.astype(jnp.float32)).max())
        lines.append(f"grad d{name} max |cudnn - xla| = {diff:.3g} (max |xla| {scale:.3g})")
    return lines


def one_b_config(batch: int, seq: int):
    from emollm_jax.config import presets

    c = presets.lm("llama2-7b")
    c.model.text.update(hidden_size=2048, intermediate_size=5632, num_layers=16, num_heads=16,
                        num_kv_heads=8, vocab_size=32000)  # fmt: skip
    c.model.attention = "cudnn"
    c.train.loss_chunk = 1024
    c.data.seq_buckets = (seq,)
    c.data.batch_size = batch
    return c


def check_step(batch: int, seq: int, steps: int) -> list[str]:
    import jax

    from emollm_jax.aot import analysis

    config = one_b_config(batch, seq)
    devices = [_gpu()]
    row = analysis.train_row(config, devices, batch_per_chip=batch, seq_len=seq, frames=0)
    if row["error"]:
        return [f"training step: FAILED {row['error']}"]
    measured = _measure(config, devices, batch, seq, steps)
    est = row["est_step_s"]
    return [
        f"1B LM training step, {batch} x {seq} tokens, bf16, full remat, cuDNN attention on "
        f"{devices[0].device_kind} ({jax.__version__}):",
        f"  measured {measured:.4f} s/step (median of {steps}), estimate {est:.4f} s "
        f"(ESTIMATE: aot/roofline.py, chip {row.get('chip')}), ratio estimate/measured "
        f"{est / measured:.3f}",
        f"  memory (compiler): {row['bytes_per_chip']['total'] / 2**30:.2f} GiB of "
        f"{row['hbm_bytes'] / 2**30:.0f} GiB",
    ]


def _measure(config, devices, batch, seq, steps) -> float:
    import jax
    import numpy as np

    from emollm_jax.sharding.mesh import mesh_and_rules
    from emollm_jax.train.program import build_train_program

    mesh, rules = mesh_and_rules(config, devices)
    program = build_train_program(config, mesh, rules, warn=False)
    zeros = jax.jit(
        lambda: jax.tree.map(
            lambda x: jax.random.key(0) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)
            else jax.numpy.zeros(x.shape, x.dtype), program.abstract_state),
        out_shardings=program.state_shardings,
    )  # fmt: skip
    state = zeros()
    rng = np.random.default_rng(0)
    ids = rng.integers(3, 32000, size=(batch, seq)).astype(np.int32)
    batch_arrays = dict(input_ids=ids, labels=ids, attention_mask=np.ones_like(ids),
                        positions=np.broadcast_to(np.arange(seq, dtype=np.int32), ids.shape),
                        segment_ids=np.ones_like(ids))  # fmt: skip
    batch_arrays = jax.device_put(batch_arrays, program.batch_sharding)
    state, metrics = program.step(state, batch_arrays)
    jax.block_until_ready(metrics)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        state, metrics = program.step(state, batch_arrays)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args(argv)
    gpu = _gpu()
    if gpu is None or "nvidia" not in gpu.device_kind.lower():
        print("no NVIDIA GPU on this machine: nothing to check (exit 0)")
        return 0
    from emollm_jax.models.attention import AttentionSettings, attend
    from emollm_jax.models.attention_mask import self_attention_mask

    for line in check_attention(AttentionSettings, attend, self_attention_mask):
        print(line, flush=True)
    for line in check_step(args.batch, args.seq, args.steps):
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
