"""The ablation's probes, read from (and, for the perspective probe, added to) each run's folder.

- Per cue scale and rationale faithfulness: from a run's ``generate`` predictions and the mini
  EmoBench v2 records' ``cause`` (``eval.ablation_analysis.per_scale``, ``eval.faithfulness``);
  faithfulness for runs whose replies carry a rationale (most replies hold ``Answer:``).
- Perspective ablation (``--probe-perspectives``): for every run of a multi-perspective
  projector, one ``generate`` evaluation per active perspective with that perspective's tokens
  zeroed (``config.model.zeroed_perspectives``) into ``<run>/eval/<split>-zeroed-<name>``, on
  the split's first ``--probe-limit`` records (0: all); the intact accuracy is taken from the
  run's own predictions of the same records, so each drop is paired by record set and seed.
"""

from __future__ import annotations

import gzip
import json
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

from emollm_jax.config.model import PERSPECTIVES
from emollm_jax.eval import ablation_analysis as analysis
from emollm_jax.eval.ablation_files import scores
from emollm_jax.eval.faithfulness import faithfulness, read_jsonl
from emollm_jax.eval.metrics import compute_metrics

ZEROED = "zeroed"
PREDICTIONS = "predictions.jsonl"
PACKED = PREDICTIONS + ".gz"  # what a kept runs folder holds (``ablate.keep_predictions``)


def _stored_projector(run: Path) -> dict:
    path = run / "train_config.json"
    if not path.exists():
        return {}
    return (json.loads(path.read_text(encoding="utf-8")).get("model") or {}).get("projector") or {}


def perspectives_of(run: Path) -> tuple[str, ...]:
    """The active perspectives of a finished run's multi-perspective projector (none for
    another projector)."""
    projector = _stored_projector(run)
    if projector.get("type") != "multi_perspective":
        return ()
    return tuple(p for p in PERSPECTIVES if p in projector.get("perspectives", ()))


def zeroed_dir(eval_dir: Path, name: str) -> Path:
    return eval_dir.with_name(f"{eval_dir.name}-{ZEROED}-{name}")


def zeroed_command(base_command: list[str], run: Path, eval_dir: Path, name: str, limit: int):
    """The evaluate command of one perspective-zeroed evaluation, from the run's job command
    (``python -m emollm_jax.main_job`` with its arguments)."""
    keep = [a for a in base_command[3:] if not a.startswith(("--workdir=", "--data="))]
    data = next(a.split("=", 1)[1] for a in base_command if a.startswith("--data="))
    return [
        *base_command[:2],
        "emollm_jax.evaluate",
        *keep,
        f"--checkpoint={run}",
        f"--workdir={zeroed_dir(eval_dir, name)}",
        f"--config.data.dir={data}",
        f"--config.model.zeroed_perspectives=('{name}',)",
        "--config.eval.modes=('generate',)",
        f"--config.eval.limit={limit}",
    ]


def run_perspective_probe(
    run: Path, eval_dir: Path, base_command: list[str], limit: int, log: Callable = print
) -> bool:
    """Run the missing perspective-zeroed evaluations of one run; False if one failed."""
    for name in perspectives_of(run):
        folder = zeroed_dir(eval_dir, name)
        if (folder / "results.json").exists():
            continue
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder.parent / f"{folder.name}.log", "a", encoding="utf-8") as out:
            done = subprocess.run(
                zeroed_command(base_command, run, eval_dir, name, limit),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        if done.returncode != 0 or not (folder / "results.json").exists():
            log(f"[ablate] perspective probe {name} of {run} FAILED; see {out.name}")
            return False
    return True


def _rows(folder: Path) -> list[dict]:
    """An evaluation's prediction rows, from ``predictions.jsonl`` or its gzip copy."""
    if (folder / PREDICTIONS).exists():
        return read_jsonl(folder / PREDICTIONS)
    if (folder / PACKED).exists():
        text = gzip.decompress((folder / PACKED).read_bytes()).decode("utf-8")
        return [json.loads(x) for x in text.splitlines() if x]
    return []


def _has_rationale(rows: list[dict]) -> bool:
    said = [r for r in rows if "answer:" in str(r.get("output", "")).lower()]
    return bool(rows) and len(said) > len(rows) / 2


def collect(
    eval_dirs: Mapping[str, Mapping[int, Path]], records: Mapping[str, Mapping]
) -> dict[str, dict]:
    """Every probe's per-seed values, by variant: ``{"per_scale": {variant: {seed: {scale:
    acc}}}, "per_confounder": {variant: {seed: {confounder: acc}}}, "faithfulness": {variant:
    {seed: result}}, "perspectives": {variant: {name: {seed: {column: acc}}}},
    "perspectives_intact": {variant: {seed: {column: acc}}}, "right": {variant: {seed: {task:
    {record id: right}}}}}``."""
    out: dict[str, dict] = {
        "per_scale": {},
        "per_confounder": {},
        "faithfulness": {},
        "perspectives": {},
        "perspectives_intact": {},
        "right": {},
    }
    for variant, seeds in eval_dirs.items():
        for seed, folder in seeds.items():
            rows = _rows(folder)
            if not rows:
                continue
            right = out["right"].setdefault(variant, {}).setdefault(seed, {})
            for r in rows:
                right.setdefault(r["task"], {})[str(r["id"])] = analysis.is_right(r)
            scale = analysis.per_scale(rows, records)
            if scale:
                out["per_scale"].setdefault(variant, {})[seed] = scale
            confounder = analysis.per_confounder(rows, records)
            if confounder:
                out["per_confounder"].setdefault(variant, {})[seed] = confounder
            if _has_rationale(rows):
                out["faithfulness"].setdefault(variant, {})[seed] = faithfulness(rows, records)
            intact_by_ids: dict[frozenset, dict] = {}  # every probe of a run sees the same records
            for probe in sorted(folder.parent.glob(f"{folder.name}-{ZEROED}-*")):
                zeroed = _rows(probe)
                if not (probe / "results.json").exists() or not zeroed:
                    continue
                name = probe.name.rsplit("-", 1)[1]
                ids = frozenset(str(r["id"]) for r in zeroed)
                if ids not in intact_by_ids:
                    intact = [r for r in rows if str(r["id"]) in ids]
                    intact_by_ids[ids] = scores(compute_metrics(intact))
                per = out["perspectives"].setdefault(variant, {}).setdefault(name, {})
                per[seed] = scores(compute_metrics(zeroed))
                out["perspectives_intact"].setdefault(variant, {})[seed] = intact_by_ids[ids]
    return out
