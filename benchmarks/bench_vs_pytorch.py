"""emollm_jax against transformers (PyTorch eager) on this machine, side by side in one process.

One random Hugging Face ``LlamaForCausalLM`` (and a ``LlavaForConditionalGeneration`` around
it with a CLIP vision tower) is built with transformers' PyTorch classes into a temp dir; both
sides load those very weights (ours through ``emollm_jax.load_hf``). Rows:

- train step (AdamW, clipped, float32); the same with bfloat16 compute (PyTorch:
  ``torch.autocast("cpu", torch.bfloat16)``; ours: ``dtype="bfloat16"``, float32 parameters);
- greedy generation, ``--prompt`` tokens in, ``--new-tokens`` out, at each of ``--gen-batches``,
  and at batch 1 with bfloat16 weights on both sides;
- the LLaVA composite (one image per row, vision tower frozen): a train step and generation.

Each row prints both times (best of ``--repeats``, the two sides interleaved so that load from
other processes hits both alike), the ratio (above 1: ours faster), tokens/s, and MFU against
the 2048x2048 matmul peak of the compute dtype measured here in both libraries (the higher).
A peak run that takes over 2 s is not repeated (one slow run per library and dtype at most:
PyTorch's bfloat16 matmul on a CPU without bfloat16 instructions runs at well under 1 GFLOP/s).

Generation rows also time both sides producing ONE new token from the same prompt (the same
interleaved best-of; ours a second ``Generator`` with ``max_new_tokens=1``), and the notes give
the decode-only time per token, (t(new tokens) - t(1)) / (new tokens - 1), for both sides, and
the prefill + 1 times. The decode time is a difference of two timings: at tiny sizes, where a
run takes a few ms, it is noise and can come out negative. The main columns stay the whole
generation's. Text batch-1 generation is also set against the memory bound with that
decode-only time: the bytes of weights a token reads (every parameter but the input embedding
table) over the throughput of a 1 GiB numpy copy (read + write bytes per second), in ms per
token. Generation rows are also set against XLA's own speed at matmuls of that many rows,
measured at the start (``matvec_rates``: the model's layer shapes in a ``while_loop`` compiled
as the decoding loop is; one row for float32 and bfloat16 weights, and float32 at each larger
generation batch): the weight bytes a token reads over that speed. It shows what XLA:CPU's dots
can do with so few rows, and whether it reads bfloat16 weights as such (this jaxlib converts
them to float32 before the loop, so they are no faster).

Rows where PyTorch computes in bfloat16 (``train_bf16``, ``generate_bf16``) first estimate
PyTorch's time as the row's FLOPs over PyTorch's measured bfloat16 matmul peak. Above
``--torch-bf16-limit-s`` PyTorch's side is not run: ours is timed alone, and the row shows
PyTorch's time, ratio and tokens/s as estimates (``~``, ``(est.)``, ``not run``), with a note;
the same-tokens check of ``generate_bf16`` is then skipped.

    python benchmarks/bench_vs_pytorch.py     # a 134M LLaMA: minutes per row
    python benchmarks/bench_vs_pytorch.py --hidden 256 --heads 4 --layers 4 --intermediate 0 \
        --vocab 8000 --train-seq 128 --vision-hidden 128 --vision-layers 2     # ~3 minutes
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import sys
import tempfile
import time
from collections.abc import Callable

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ROWS = ("train", "train_bf16", "generate", "generate_bf16", "llava_train", "llava_generate")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hidden", type=int, default=768)
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--kv-heads", type=int, default=0, help="0: as many as --heads")
    p.add_argument("--intermediate", type=int, default=2048, help="0: 4 x --hidden")
    p.add_argument("--vocab", type=int, default=32000)
    p.add_argument("--train-batch", type=int, default=8)
    p.add_argument("--train-seq", type=int, default=512)
    p.add_argument("--prompt", type=int, default=128)
    p.add_argument(
        "--new-tokens",
        type=int,
        default=64,
        help="at least 2: the decode time per token is (t(N) - t(1)) / (N - 1)",
    )
    p.add_argument("--gen-batches", default="1,8", help="comma-separated batch sizes")
    p.add_argument("--vision-hidden", type=int, default=768)
    p.add_argument("--vision-layers", type=int, default=12)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--patch", type=int, default=32)
    p.add_argument("--llava-batch", type=int, default=2, help="rows of the LLaVA train step")
    p.add_argument("--loss-chunk", type=int, default=0, help="ours: train.loss_chunk")
    p.add_argument("--repeats", type=int, default=2, help="timed runs per side (best is kept)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs first (compilation)")
    p.add_argument("--rows", default=",".join(ROWS), help=f"subset of {','.join(ROWS)}")
    p.add_argument("--peak-size", type=int, default=2048, help="matmul size for the peak")
    p.add_argument("--copy-mib", type=int, default=1024, help="numpy copy size for the bound")
    p.add_argument(
        "--torch-bf16-limit-s",
        type=float,
        default=300.0,
        help="bfloat16 rows: PyTorch's side is not run (its time is shown as an estimate) where "
        "one run's FLOPs / PyTorch's bfloat16 matmul peak exceeds this many seconds",
    )
    args = p.parse_args(argv)
    if args.new_tokens < 2:
        p.error(
            f"--new-tokens must be at least 2 (got {args.new_tokens}): the decode time per "
            "token is (t(N) - t(1)) / (N - 1)"
        )
    args.kv_heads = args.kv_heads or args.heads
    args.intermediate = args.intermediate or 4 * args.hidden
    args.gen_batches = [int(b) for b in args.gen_batches.split(",") if b]
    args.rows = [r for r in args.rows.split(",") if r]
    unknown = set(args.rows) - set(ROWS)
    if unknown:
        p.error(f"--rows: unknown {sorted(unknown)}; choose from {','.join(ROWS)}")
    return args


# --------------------------------------------------------------------------- measurements


def best_of(
    fn: Callable[[], object], repeats: int, warmup: int, slow_s: float = float("inf")
) -> float:
    """Best seconds of ``repeats`` timed runs after ``warmup`` untimed ones; a first timed run
    over ``slow_s`` is kept alone (not repeated)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        if times[0] > slow_s:
            break
    return min(times)


def side_by_side(theirs: Callable, ours: Callable, repeats: int, warmup: int):
    """(best seconds of ``theirs``, of ``ours``), runs interleaved."""
    for _ in range(warmup):
        theirs()
        ours()
    t_theirs, t_ours = [], []
    for _ in range(repeats):
        t_theirs.append(best_of(theirs, 1, 0))
        t_ours.append(best_of(ours, 1, 0))
    return min(t_theirs), min(t_ours)


PEAK_SLOW_S = 2.0  # a matmul peak run slower than this is not repeated


def matmul_peaks(n: int) -> dict[tuple[str, str], float]:
    """FLOP/s of an ``n x n`` matmul: ``{(library, dtype): flops}``; best of 5 runs, or the
    first run alone where it took over ``PEAK_SLOW_S`` (JAX's compiled before)."""
    import jax
    import jax.numpy as jnp
    import torch

    out = {}
    for name in ("float32", "bfloat16"):
        a = np.random.default_rng(0).random((n, n), np.float32)
        t = torch.from_numpy(a).to(getattr(torch, name))
        out["pytorch", name] = 2 * n**3 / best_of(lambda: t @ t, 5, 0, PEAK_SLOW_S)
        x = jnp.asarray(a, name)
        mm = jax.jit(lambda u: u @ u).lower(x).compile()
        seconds = best_of(lambda: mm(x).block_until_ready(), 5, 0, PEAK_SLOW_S)
        out["jax", name] = 2 * n**3 / seconds
    return out


def copy_bandwidth(mib: int) -> float:
    """Bytes read + written per second by a numpy copy of ``mib`` MiB."""
    src = np.ones(mib * 2**20 // 4, np.float32)
    dst = np.empty_like(src)
    return 2 * src.nbytes / best_of(lambda: np.copyto(dst, src), 3, 1)


MATVEC_STEPS = 16  # steps of the matrix-vector loop (each reads every weight once)


def matvec_rates(
    hidden: int,
    intermediate: int,
    layers: int,
    rows: int = 1,
    dtypes: tuple[str, ...] = ("float32", "bfloat16"),
) -> dict[str, tuple[float, bool]]:
    """XLA's speed at what decoding is made of: ``rows`` rows (1: matrix-vector) through
    ``layers`` pairs of ``[hidden, intermediate]`` and ``[intermediate, hidden]`` weights (an MLP
    without its gate), ``MATVEC_STEPS`` times inside one jitted ``while_loop`` compiled as the
    decoding loop is, for each of ``dtypes``. ``{dtype: (weight bytes read per second, whether
    the compiled program converts the weights to float32 before the loop)}``."""
    import jax
    import jax.numpy as jnp

    from emollm_jax.generate.decode import CPU_LOOP_OPTIONS

    out = {}
    for name in dtypes:
        dtype = jnp.dtype(name)
        keys = jax.random.split(jax.random.key(0), 2 * layers)
        shapes = [(hidden, intermediate), (intermediate, hidden)] * layers
        weights = [0.02 * jax.random.normal(k, sh, dtype) for k, sh in zip(keys, shapes)]

        def steps(weights, x):
            def body(carry):
                i, x = carry
                for up, down in zip(weights[::2], weights[1::2]):
                    h = jax.nn.silu(jnp.dot(x, up, preferred_element_type=jnp.float32))
                    x = x + jnp.dot(h.astype(dtype), down, preferred_element_type=jnp.float32)
                    x = x.astype(dtype)
                return i + 1, x

            return jax.lax.while_loop(lambda c: c[0] < MATVEC_STEPS, body, (0, x))[1]

        x = jnp.ones((rows, hidden), dtype)
        program = jax.jit(steps, compiler_options=CPU_LOOP_OPTIONS).lower(weights, x).compile()
        entry = program.as_text().split("\nENTRY ", 1)[-1]
        converted = f"f32[{hidden},{intermediate}]" in entry and name == "bfloat16"
        seconds = best_of(lambda: program(weights, x).block_until_ready(), 5, 1)
        out[name] = (sum(w.nbytes for w in weights) * MATVEC_STEPS / seconds, converted)
    return out


def few_row_rates(args) -> dict[tuple[str, int], tuple[float, bool]]:
    """``matvec_rates`` for one row (float32 and bfloat16 weights) and for each larger
    generation batch (float32), by (dtype, rows)."""
    shape = (args.hidden, args.intermediate, args.layers)
    out = {(dtype, 1): r for dtype, r in matvec_rates(*shape).items()}
    for b in sorted(set(args.gen_batches) - {1}):
        out["float32", b] = matvec_rates(*shape, rows=b, dtypes=("float32",))["float32"]
    return out


# --------------------------------------------------------------------------- models


def hf_configs(args):
    import transformers

    text = transformers.LlamaConfig(
        vocab_size=args.vocab,
        hidden_size=args.hidden,
        intermediate_size=args.intermediate,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.kv_heads,
        max_position_embeddings=max(args.train_seq, args.prompt + args.new_tokens) + 8,
        tie_word_embeddings=False,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    vision = transformers.CLIPVisionConfig(
        hidden_size=args.vision_hidden,
        intermediate_size=4 * args.vision_hidden,
        num_hidden_layers=args.vision_layers,
        num_attention_heads=max(1, args.vision_hidden // 64),
        image_size=args.image_size,
        patch_size=args.patch,
    )
    llava = transformers.LlavaConfig(
        vision_config=vision.to_dict(),
        text_config=text.to_dict(),
        image_token_index=args.vocab - 1,
    )
    return text, llava


def save_hf_model(cls, config, path: pathlib.Path) -> tuple[str, int]:
    """(folder, number of parameters) of a freshly initialised ``cls(config)``."""
    import torch

    torch.manual_seed(0)
    model = cls(config)
    model.save_pretrained(path)
    return str(path), sum(p.numel() for p in model.parameters())


def image_tokens(args) -> int:
    return (args.image_size // args.patch) ** 2


@dataclasses.dataclass
class Machine:
    peaks: dict[tuple[str, str], float]  # matmul FLOP/s by (library, dtype)
    copy_bps: float  # numpy copy bytes (read + write) per second
    # XLA's weight bytes read per second by a loop of few-row matmuls, and whether bfloat16
    # weights were converted to float32 before the loop, by (dtype, rows) (``matvec_rates``)
    matvec: dict[tuple[str, int], tuple[float, bool]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class GenTiming:
    """Seconds of one generation row: ``new_tokens`` out and one token out (prefill + 1), for
    PyTorch (``theirs``) and ours."""

    theirs_s: float
    ours_s: float
    theirs_one_s: float
    ours_one_s: float
    new_tokens: int
    same: float | None  # fraction of generated tokens that agree; None: PyTorch not run
    theirs_estimated: bool = False  # PyTorch's times are FLOPs / its peak, not measured

    def decode_s(self) -> tuple[float, float]:
        """Decode-only seconds per token (PyTorch, ours): the prefill taken out."""
        return (
            decode_per_token(self.theirs_s, self.theirs_one_s, self.new_tokens),
            decode_per_token(self.ours_s, self.ours_one_s, self.new_tokens),
        )


def decode_per_token(t_full: float, t_one: float, new_tokens: int) -> float:
    """Seconds per decoded token: the ``new_tokens - 1`` tokens after the first, whose run
    (``t_one``) holds the prefill."""
    return (t_full - t_one) / (new_tokens - 1)


@dataclasses.dataclass
class Row:
    work: str
    theirs_s: float
    ours_s: float
    tokens: int  # tokens processed (train) or generated (generation)
    flops: float  # model FLOPs of one run
    dtype: str  # compute dtype, picks the peak
    note: str = ""
    theirs_estimated: bool = False  # PyTorch not run: ``theirs_s`` is FLOPs / its matmul peak
    gen: GenTiming | None = None  # generation rows: the times behind the decode notes

    def line(self, peaks) -> str:
        peak = max(peaks["pytorch", self.dtype], peaks["jax", self.dtype])
        mfu = [self.flops / s / peak for s in (self.theirs_s, self.ours_s)]
        theirs = f"{self.theirs_s:.3f} s"
        ratio = f"{self.theirs_s / self.ours_s:.2f}x"
        theirs_rate = f"{self.tokens / self.theirs_s:.1f}"
        theirs_mfu = f"{100 * mfu[0]:.1f}%"
        if self.theirs_estimated:
            theirs = f"~{estimate_digits(self.theirs_s)} s ({ESTIMATE}; not run)"
            ratio, theirs_rate, theirs_mfu = f"~{ratio} (est.)", f"~{theirs_rate} (est.)", "not run"
        return (
            f"| {self.work} | {theirs} | {self.ours_s:.3f} s | {ratio} | {theirs_rate} | "
            f"{self.tokens / self.ours_s:.1f} | {theirs_mfu} | {100 * mfu[1]:.1f}% | {self.note} |"
        )


ESTIMATE = "estimate: FLOPs / PyTorch's bfloat16 matmul peak"


def estimate_digits(seconds: float) -> str:
    """An estimate's seconds, without digits it does not have."""
    return f"{seconds:.0f}" if seconds >= 100 else f"{seconds:.3g}"


HEADER = (
    "| work | PyTorch | emollm_jax | ratio (ours faster > 1) | PyTorch tokens/s | "
    "emollm_jax tokens/s | PyTorch MFU | emollm_jax MFU | notes |\n"
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
)


# --------------------------------------------------------------------------- train step


def train_config():
    """The project's default ``config.train`` (AdamW, clipping, schedule); PyTorch gets the same
    hyper-parameters."""
    from emollm_jax.config.base import base_config

    return base_config().train


def torch_train_step(model, batch: dict, bf16: bool) -> Callable[[], None]:
    import contextlib

    import torch

    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    tc = train_config()
    opt = torch.optim.AdamW(
        params, lr=tc.learning_rate, betas=(tc.b1, tc.b2), eps=tc.eps, weight_decay=tc.weight_decay
    )
    inputs = {k: torch.from_numpy(v) for k, v in batch.items()}
    inputs = {k: v.long() if v.dtype == torch.int32 else v for k, v in inputs.items()}

    def step():
        ctx = torch.autocast("cpu", torch.bfloat16) if bf16 else contextlib.nullcontext()
        with ctx:
            loss = model(**inputs).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, tc.grad_clip_norm)
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def ours_train_step(model, batch: dict, loss_chunk: int) -> Callable[[], None]:
    import jax
    import jax.numpy as jnp

    from emollm_jax.train import partition
    from emollm_jax.train.optimizer import make_optimizer, schedule
    from emollm_jax.train.state import TrainState
    from emollm_jax.train.step import make_train_step

    cfg = train_config()
    graphdef, trainable, frozen = partition.split(
        model, partition.trainable_filter(model.config, stage=2)
    )
    tx = make_optimizer(cfg, trainable)
    state = TrainState(
        step=jnp.zeros((), jnp.int32),
        trainable=trainable,
        frozen=frozen,
        opt_state=tx.init(trainable),
        rng=jax.random.key(0),
    )
    fn = jax.jit(
        make_train_step(graphdef, tx, schedule(cfg), loss_chunk=loss_chunk), donate_argnums=(0,)
    )
    batch = {k: jnp.asarray(v) for k, v in batch.items()}
    holder = [state]

    def step():
        holder[0], metrics = fn(holder[0], batch)
        jax.block_until_ready(metrics)

    return step


def text_batch(args, rows: int, seq: int, image: int = 0) -> dict:
    """Random tokens (the first ``image`` of each row the image placeholder, unscored)."""
    rng = np.random.default_rng(0)
    ids = rng.integers(3, args.vocab - 1, (rows, seq), dtype=np.int64).astype(np.int32)
    ids[:, :image] = args.vocab - 1
    labels = ids.copy()
    labels[:, :image] = -100
    return dict(input_ids=ids, attention_mask=np.ones_like(ids), labels=labels)


def pixels(args, rows: int) -> np.ndarray:
    shape = (rows, 3, args.image_size, args.image_size)
    return np.random.default_rng(1).standard_normal(shape).astype(np.float32)


# --------------------------------------------------------------------------- generation


def torch_generate(model, batch: dict, new_tokens: int) -> Callable[[], np.ndarray]:
    import torch

    model.eval()
    inputs = {k: torch.from_numpy(v) for k, v in batch.items()}
    inputs = {k: v.long() if v.dtype == torch.int32 else v for k, v in inputs.items()}
    prompt = inputs["input_ids"].shape[1]

    def run():
        with torch.inference_mode():
            out = model.generate(
                **inputs,
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                do_sample=False,
                pad_token_id=0,
            )
        return out[:, prompt:].numpy()

    return run


def ours_generate(model, batch: dict, new_tokens: int) -> Callable[[], np.ndarray]:
    from emollm_jax.generate.decode import GenerateConfig, Generator

    gen = Generator(model, GenerateConfig(max_new_tokens=new_tokens, eos_ids=(), pad_id=0))
    return lambda: gen(batch).tokens


def timed_generation(theirs_model, ours_model, batch: dict, args, estimate=None) -> GenTiming:
    """Both sides generating ``args.new_tokens`` tokens and one token, each pair interleaved;
    with ``estimate`` (PyTorch's estimated seconds: (all tokens, one token)) PyTorch is not run
    (``theirs_model`` may be None) and ours is timed alone."""
    ours = ours_generate(ours_model, batch, args.new_tokens)
    ours_one = ours_generate(ours_model, batch, 1)
    if estimate is not None:
        t_ours = best_of(ours, args.repeats, args.warmup)
        t_ours_one = best_of(ours_one, args.repeats, args.warmup)
        return GenTiming(estimate[0], t_ours, estimate[1], t_ours_one, args.new_tokens, None, True)
    theirs = torch_generate(theirs_model, batch, args.new_tokens)
    theirs_one = torch_generate(theirs_model, batch, 1)
    t_theirs, t_ours = side_by_side(theirs, ours, args.repeats, args.warmup)
    t_theirs_one, t_ours_one = side_by_side(theirs_one, ours_one, args.repeats, args.warmup)
    same = float(np.mean(theirs() == ours()))
    return GenTiming(t_theirs, t_ours, t_theirs_one, t_ours_one, args.new_tokens, same)


def generation_note(
    g: GenTiming, bound_s: float | None = None, matvec: tuple[float, bool, int] | None = None
) -> str:
    """The same-tokens check, decode-only ms/token and prefill + 1 seconds of both sides, and
    (with ``bound_s``, the memory bound's seconds per token) ours against the bound; with
    ``matvec`` (seconds XLA's loop of few-row matmuls takes to read these weights once, whether
    it converts bfloat16 weights to float32 first, and its rows) ours against that too."""
    theirs_dec, ours_dec = g.decode_s()
    mark, est = ("~", " (est.)") if g.theirs_estimated else ("", "")
    if g.same is None:
        parts = ["same-tokens check skipped (PyTorch not run)"]
    else:
        parts = [f"same tokens as PyTorch: {100 * g.same:.0f}%"]
    parts.append(
        f"decode: ours {1e3 * ours_dec:.1f} ms/token, PyTorch {mark}{1e3 * theirs_dec:.1f}{est}"
    )
    parts.append(
        f"prefill + 1: ours {g.ours_one_s:.3f} s, PyTorch {mark}{g.theirs_one_s:.3f} s{est}"
    )
    if bound_s is not None:
        parts.append(f"memory bound {1e3 * bound_s:.1f} ms ({ours_dec / bound_s:.2f}x the bound)")
    if matvec is not None:
        seconds, converted, rows = matvec
        kind = "matrix-vector" if rows == 1 else f"{rows}-row matmul"
        parts.append(
            f"XLA {kind} time of these weights {1e3 * seconds:.1f} ms "
            f"({ours_dec / seconds:.2f}x it"
            + ("; XLA converts bfloat16 weights to float32 before the loop)" if converted else ")")
        )
    return "; ".join(parts)


# --------------------------------------------------------------------------- rows


def free_memory() -> None:
    """Drop the last row's models, optimizer states and compiled programs before the next."""
    import gc

    import jax

    gc.collect()
    jax.clear_caches()


def weight_bytes_per_token(model) -> int:
    """Bytes of the parameters one decoding step reads: all but the input embedding table
    (a token reads one row of it)."""
    import jax
    from flax import nnx

    total = sum(x.nbytes for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
    lm = getattr(model, "language_model", model)
    return total - lm.embed_tokens.embedding[...].nbytes


def generation_flops(cfg, batch: int, prompt: int, new: int) -> float:
    """Prefill plus one forward pass per further token (attention over the cache counted at
    the final context length: an upper bound within a few percent)."""
    from emollm_jax.train.flops import llm_forward_flops

    t = cfg.text
    attn = 4 * (prompt + new) * t.num_heads * t.resolved_head_dim * t.num_layers
    per_token = llm_forward_flops(cfg, batch, 1) + batch * attn
    return llm_forward_flops(cfg, batch, prompt) + (new - 1) * per_token


def torch_bf16_estimate(args, machine: Machine, flops: float) -> float | None:
    """PyTorch's estimated seconds for ``flops`` in bfloat16 (over its measured bfloat16 matmul
    peak) where they exceed ``--torch-bf16-limit-s``: its side is then not run; else None."""
    seconds = flops / machine.peaks["pytorch", "bfloat16"]
    return seconds if seconds > args.torch_bf16_limit_s else None


def estimate_note(args, machine: Machine, seconds: float) -> str:
    gflops = machine.peaks["pytorch", "bfloat16"] / 1e9
    return (
        f"PyTorch not run: its estimate, FLOPs / its bfloat16 matmul peak ({gflops:.2g} "
        f"GFLOP/s), is {estimate_digits(seconds)} s > --torch-bf16-limit-s "
        f"{args.torch_bf16_limit_s:g}; its time, ratio and tokens/s are that estimate"
    )


def run_rows(args, paths: dict, machine: Machine, out: Callable[[str], None]) -> list[Row]:
    import torch
    import transformers

    import emollm_jax
    from emollm_jax.train.flops import train_step_flops

    rows = []
    t_batch = text_batch(args, args.train_batch, args.train_seq)
    t_tokens = args.train_batch * args.train_seq
    for name, bf16 in (("train", False), ("train_bf16", True)):
        if name not in args.rows:
            continue
        ours = emollm_jax.load_hf(paths["llama"], dtype="bfloat16" if bf16 else "float32")
        flops = train_step_flops(ours.config, args.train_batch, args.train_seq, 0, False)
        estimate = torch_bf16_estimate(args, machine, flops) if bf16 else None
        ours_step = ours_train_step(ours, t_batch, args.loss_chunk)
        if estimate is None:
            theirs = transformers.LlamaForCausalLM.from_pretrained(paths["llama"])
            t_theirs, t_ours = side_by_side(
                torch_train_step(theirs, t_batch, bf16), ours_step, args.repeats, args.warmup
            )
            del theirs
        else:
            t_theirs, t_ours = estimate, best_of(ours_step, args.repeats, args.warmup)
        work = f"train step {args.train_batch}x{args.train_seq}, AdamW, " + (
            "bfloat16 compute (autocast)" if bf16 else "float32"
        )
        note = "" if estimate is None else estimate_note(args, machine, estimate)
        dtype = "bfloat16" if bf16 else "float32"
        rows.append(Row(work, t_theirs, t_ours, t_tokens, flops, dtype, note, estimate is not None))
        out(rows[-1].line(machine.peaks))
        del ours, ours_step
        free_memory()

    prompt = text_batch(args, max(args.gen_batches), args.prompt)
    gen_rows = [(b, "float32") for b in args.gen_batches] if "generate" in args.rows else []
    gen_rows += [(1, "bfloat16")] if "generate_bf16" in args.rows else []
    for b, dtype in gen_rows:
        ours = emollm_jax.load_hf(paths["llama"], dtype=dtype, param_dtype=dtype)
        batch = {k: prompt[k][:b] for k in ("input_ids", "attention_mask")}
        flops = generation_flops(ours.config, b, args.prompt, args.new_tokens)
        estimate = torch_bf16_estimate(args, machine, flops) if dtype == "bfloat16" else None
        theirs = None
        if estimate is None:
            theirs = transformers.LlamaForCausalLM.from_pretrained(paths["llama"])
            theirs.to(getattr(torch, dtype))
            gen = timed_generation(theirs, ours, batch, args)
        else:
            one = generation_flops(ours.config, b, args.prompt, 1)
            one /= machine.peaks["pytorch", "bfloat16"]
            gen = timed_generation(None, ours, batch, args, (estimate, one))
        bound = matvec = None
        weights = weight_bytes_per_token(ours)
        if b == 1:  # the copy bandwidth measured again here; the better of the two is used
            bound = weights / max(machine.copy_bps, copy_bandwidth(args.copy_mib))
        if (dtype, b) in machine.matvec:
            rate, converted = machine.matvec[dtype, b]
            matvec = (weights / rate, converted, b)
        note = generation_note(gen, bound, matvec)
        if estimate is not None:
            note = f"{estimate_note(args, machine, estimate)}; {note}"
        work = f"greedy generation, prompt {args.prompt} + {args.new_tokens} new, batch {b}"
        work += ", bfloat16 weights" if dtype == "bfloat16" else ""
        tokens = b * args.new_tokens
        est = gen.theirs_estimated
        rows.append(Row(work, gen.theirs_s, gen.ours_s, tokens, flops, dtype, note, est, gen))
        out(rows[-1].line(machine.peaks))
        del theirs, ours
        free_memory()

    n_img = image_tokens(args)
    if "llava_train" in args.rows:
        theirs = transformers.LlavaForConditionalGeneration.from_pretrained(paths["llava"])
        for pname, p in theirs.named_parameters():
            p.requires_grad_("vision_tower" not in pname)
        ours = emollm_jax.load_hf(paths["llava"])
        batch = text_batch(args, args.llava_batch, args.train_seq, image=n_img)
        batch["pixel_values"] = pixels(args, args.llava_batch)
        t_theirs, t_ours = side_by_side(
            torch_train_step(theirs, batch, False),
            ours_train_step(ours, batch, args.loss_chunk),
            args.repeats,
            args.warmup,
        )
        flops = train_step_flops(ours.config, args.llava_batch, args.train_seq, 1, False)
        work = (
            f"LLaVA train step {args.llava_batch}x{args.train_seq} + 1 image each "
            "(vision frozen), float32"
        )
        tokens = args.llava_batch * args.train_seq
        rows.append(Row(work, t_theirs, t_ours, tokens, flops, "float32"))
        out(rows[-1].line(machine.peaks))
        del theirs, ours
        free_memory()
    if "llava_generate" in args.rows:
        theirs = transformers.LlavaForConditionalGeneration.from_pretrained(paths["llava"])
        ours = emollm_jax.load_hf(paths["llava"])
        batch = text_batch(args, 1, max(args.prompt, n_img + 1), image=n_img)
        batch = {k: batch[k] for k in ("input_ids", "attention_mask")}
        batch["pixel_values"] = pixels(args, 1)
        gen = timed_generation(theirs, ours, batch, args)
        s = batch["input_ids"].shape[1]
        flops = generation_flops(ours.config, 1, s, args.new_tokens)
        flops += train_step_flops(ours.config, 1, 0, 1, False)  # the vision tower's forward
        work = f"LLaVA greedy generation, 1 image + prompt {s} + {args.new_tokens} new, batch 1"
        note = generation_note(gen)
        tokens = args.new_tokens
        rows.append(Row(work, gen.theirs_s, gen.ours_s, tokens, flops, "float32", note, gen=gen))
        out(rows[-1].line(machine.peaks))
    return rows


def main(argv=None, out: Callable[[str], None] = print) -> list[Row]:
    args = parse_args(argv)
    import jax
    import torch
    import transformers

    transformers.utils.logging.disable_progress_bar()
    out(
        f"machine: {cpu_model()}, {os.cpu_count()} cores; torch threads "
        f"{torch.get_num_threads()}; jax {jax.__version__} on {jax.devices()[0].platform}; "
        f"torch {torch.__version__}; transformers {transformers.__version__}"
    )
    out(f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")
    machine = Machine(
        matmul_peaks(args.peak_size),
        copy_bandwidth(args.copy_mib),
        few_row_rates(args),
    )
    for (lib, dtype), f in sorted(machine.peaks.items()):
        size = f"{args.peak_size}x{args.peak_size}"
        out(f"matmul peak {size} {dtype:8s} {lib:8s}: {f / 1e9:.1f} GFLOP/s")
    gbps = machine.copy_bps / 1e9
    out(f"memory: numpy copy of {args.copy_mib} MiB: {gbps:.1f} GB/s (read + write)")
    for (dtype, rows), (rate, converted) in machine.matvec.items():
        kind = "matrix-vector, 1 row" if rows == 1 else f"{rows}-row matmul"
        out(
            f"XLA {kind}, {dtype} weights ({args.layers} x [{args.hidden}, "
            f"{args.intermediate}] + [{args.intermediate}, {args.hidden}] in a while_loop): "
            f"{rate / 1e9:.1f} GB/s of weights read"
            + ("; the weights are converted to float32 before the loop" if converted else "")
        )
    with tempfile.TemporaryDirectory() as tmp:
        text_cfg, llava_cfg = hf_configs(args)
        llama, n_params = save_hf_model(
            transformers.LlamaForCausalLM, text_cfg, pathlib.Path(tmp, "llama")
        )
        paths = dict(llama=llama)
        if any(r.startswith("llava") for r in args.rows):
            paths["llava"], _ = save_hf_model(
                transformers.LlavaForConditionalGeneration, llava_cfg, pathlib.Path(tmp, "llava")
            )
        out(
            f"model: LLaMA of {n_params / 1e6:.0f}M parameters: hidden {args.hidden}, "
            f"{args.layers} layers, {args.heads} heads ({args.kv_heads} kv), intermediate "
            f"{args.intermediate}, vocab {args.vocab}; CLIP hidden {args.vision_hidden}, "
            f"{args.vision_layers} layers, {args.image_size}px / {args.patch} "
            f"({image_tokens(args)} image tokens); best of {args.repeats} after {args.warmup} "
            "warm-up"
        )
        out(HEADER)
        return run_rows(args, paths, machine, out)


def cpu_model() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    main()
