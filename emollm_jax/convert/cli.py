"""Command line: ``emollm convert {hf-to-orbax,orbax-to-hf} SRC DST [options]`` (also
``python -m emollm_jax.convert``).

Exit status: 0 on success; 2 on bad input (unreadable or inconsistent checkpoint, existing
destination without ``--overwrite``...), with the reason on stderr and nothing written at DST;
3 when ``--verify`` finds a difference above ``--tolerance`` (1 stays Python's own status for
an unexpected error).
"""

from __future__ import annotations

import argparse
import sys
import time

from emollm_jax.config.eval import WEIGHTS
from emollm_jax.convert.dtypes import CHOICES

BAD_INPUT, VERIFY_FAILED = 2, 3

EXAMPLES = """
examples:
  emollm convert hf-to-orbax hf/llava-7b ckpt/llava-7b --verify
  emollm convert orbax-to-hf runs/stage2 export/stage2 --dtype bfloat16 \\
      --max-shard-size 2GB
  emollm convert orbax-to-hf runs/stage2 export/base --no-merge-lora
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emollm convert",
        description="Convert checkpoints between Hugging Face safetensors folders and Orbax, "
        "streamed tensor by tensor.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    to_orbax = sub.add_parser(
        "hf-to-orbax",
        help="HF folder -> Orbax checkpoint (DST/checkpoints/0, side files in DST/hf)",
    )
    to_hf = sub.add_parser("orbax-to-hf", help="Orbax run or checkpoint -> HF folder")
    to_orbax.add_argument("src", help="Hugging Face folder (config.json + safetensors)")
    to_orbax.add_argument("dst", help="new Orbax checkpoint folder")
    to_hf.add_argument("src", help="run folder, its checkpoints/ folder, or hf-to-orbax output")
    to_hf.add_argument("dst", help="new Hugging Face folder")
    for p in (to_orbax, to_hf):
        p.add_argument(
            "--dtype", choices=CHOICES, default="keep", help="parameter dtype (default: keep)"
        )
        p.add_argument("--overwrite", action="store_true", help="replace DST if it exists")
        p.add_argument(
            "--verify",
            action="store_true",
            help="run ours (JAX) and transformers (PyTorch) on a random prompt afterwards",
        )
        p.add_argument(
            "--tolerance",
            type=float,
            default=1e-4,
            help="largest max |logit difference| --verify accepts (default 1e-4, float32)",
        )
        p.add_argument("--seed", type=int, default=0, help="--verify's prompt seed")
    to_hf.add_argument("--step", type=int, default=None, help="default: latest complete step")
    to_hf.add_argument("--max-shard-size", default="5GB", help="e.g. 5GB, 500MB (default 5GB)")
    to_hf.add_argument(
        "--weights",
        choices=WEIGHTS,
        default="auto",
        help="a run's parameters, or the moving average it keeps of them (train.ema_decay); "
        "auto (default): the average where the checkpoint has one",
    )
    to_hf.add_argument(
        "--no-merge-lora",
        dest="merge_lora",
        action="store_false",
        help="write the base weights plus a PEFT adapter folder DST/adapter "
        "(default: LoRA merged into the weights)",
    )
    to_hf.add_argument(
        "--hf-files",
        default=None,
        help="folder to take config.json, generation_config.json and tokenizer files from "
        "(default: SRC's hf/ side folder, else the run's train.init_from)",
    )
    return parser


def _verify_hf_to_orbax(args) -> float:
    from emollm_jax.checkpoint.restore import restore_model
    from emollm_jax.convert import verify
    from emollm_jax.paths import local_folder

    ours = restore_model(args.dst, dtype="float32")
    cfg = ours.config
    round_to = None if cfg.param_dtype == "float32" else cfg.param_dtype
    with local_folder(args.src) as src:  # transformers reads local folders only
        theirs = verify.load_torch(src, cfg, round_to=round_to)
    return verify.max_difference(ours, theirs, cfg, args.seed)


def _verify_orbax_to_hf(args) -> float:
    from emollm_jax.checkpoint.restore import restore_model
    from emollm_jax.convert import lora_export, verify
    from emollm_jax.convert.dtypes import declared_dtype
    from emollm_jax.paths import local_folder

    with local_folder(args.dst) as dst:  # transformers reads local folders only
        out_dtype = declared_dtype(dst / "config.json") or "float32"
        ours = restore_model(
            args.src, step=args.step, weights=args.weights, dtype="float32", param_dtype=out_dtype
        )
        adapter = dst / lora_export.ADAPTER_DIR
        theirs = verify.load_torch(dst, ours.config, adapter=adapter if adapter.is_dir() else None)
    return verify.max_difference(ours, theirs, ours.config, args.seed)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.ERROR)  # Orbax's per-step info/warnings
    start = time.perf_counter()
    try:
        if args.command == "hf-to-orbax":
            from emollm_jax.convert.hf_to_orbax import hf_to_orbax

            hf_to_orbax(args.src, args.dst, dtype=args.dtype, overwrite=args.overwrite)
        else:
            from emollm_jax.convert.orbax_to_hf import orbax_to_hf

            orbax_to_hf(
                args.src,
                args.dst,
                step=args.step,
                weights=args.weights,
                dtype=args.dtype,
                max_shard_size=args.max_shard_size,
                merge_lora=args.merge_lora,
                hf_files=args.hf_files,
                overwrite=args.overwrite,
            )
    except (OSError, ValueError) as e:
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return BAD_INPUT
    print(f"{args.command}: wrote {args.dst} in {time.perf_counter() - start:.1f} s")
    if not args.verify:
        return 0
    check = _verify_hf_to_orbax if args.command == "hf-to-orbax" else _verify_orbax_to_hf
    diff = check(args)
    ok = diff <= args.tolerance
    print(
        f"verify: max |ours - transformers| = {diff:.3g} "
        f"({'within' if ok else 'ABOVE'} tolerance {args.tolerance:g})"
    )
    return 0 if ok else VERIFY_FAILED
