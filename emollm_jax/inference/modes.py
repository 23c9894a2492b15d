"""An evaluation in each of ``config.eval.modes``, from one loaded model, reported side by side.

- ``generate``: free generation, parsed answers
  (``emollm_jax.inference.run.evaluate_generation``); files in the evaluation folder as before.
- ``likelihood``: the option with the highest likelihood on the closed-answer sub-tasks
  (``emollm_jax.inference.likelihood_run``); files in its ``likelihood`` sub-folder.

``evaluate_modes`` loads the model once, runs the modes in that order and returns the results
and one table with a row per mode ("<model>" for generation, "<model> (likelihood)", or
"(likelihood after own rationale)" / "(likelihood, answer first)" naming the scored form of
EmoPrompt's rationale targets, with a note counting records left unscored), so that an
answer the parser could not read shows up as the gap between the rows instead of passing for a
wrong answer. The likelihood row has no open-set emotion column (no options to score), and its
mean covers the five sub-tasks present, as the table's note says. With several JAX processes
the likelihood mode is skipped (logged): it runs in one process only, for now.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax

from emollm_jax.config.model import from_config_dict
from emollm_jax.data.pipeline import load_tokenizer
from emollm_jax.errors import ConfigError
from emollm_jax.eval.likelihood import EVAL_MODES, SUBDIR
from emollm_jax.eval.metrics import Metrics
from emollm_jax.eval.result_files import markdown_table
from emollm_jax.folder_lock import FolderLock
from emollm_jax.inference.likelihood_run import LikelihoodResult, evaluate_likelihood
from emollm_jax.inference.load import check_model_matches
from emollm_jax.inference.run import (
    EvalResult,
    default_out_dir,
    eval_prompt_hook,
    evaluate_generation,
    evaluated_weights,
    load_evaluated,
    mesh_and_rules_if_any,
)
from emollm_jax.paths import AnyPath, as_path, resolved


@dataclasses.dataclass
class ModesResult:
    generate: EvalResult | None
    likelihood: LikelihoodResult | None
    out_dir: AnyPath
    table: str  # one row per mode run

    @property
    def metrics(self) -> dict[str, Metrics]:
        """The metrics of each mode that ran, by mode name."""
        found = {"generate": self.generate, "likelihood": self.likelihood}
        return {mode: r.metrics for mode, r in found.items() if r is not None}


def check_modes(e) -> tuple[str, ...]:
    """``config.eval.modes`` as a tuple of known modes (at least one), or a ConfigError."""
    modes = tuple(e.modes)
    bad = [m for m in modes if m not in EVAL_MODES]
    if bad or not modes:
        raise ConfigError(
            "eval.modes", f"{list(modes)!r}; each must be one of {EVAL_MODES}", value=modes
        )
    return modes


# How each likelihood form is named in the table (emollm_jax.inference.likelihood_run.FORMS).
FORM_TITLES = {
    "label": "likelihood",
    "answer_line": "likelihood, answer first",
    "after_own_rationale": "likelihood after own rationale",
}


def modes_table(
    metrics: dict[str, Metrics], model: str, forms: dict[str, str] | None = None
) -> str:
    """The EmoBench table with one row per mode (and each row's note on missing sub-tasks);
    ``forms`` names a mode's scoring form (``FORM_TITLES``) in its row."""
    lines, notes = [], []
    for mode, m in metrics.items():
        title = FORM_TITLES.get((forms or {}).get(mode), mode)
        label = model if mode == "generate" else f"{model} ({title})"
        table = markdown_table(m, model=label).splitlines()
        lines = lines or table[:2]
        lines.append(table[2])
        notes += [f"{mode}: {line}" for line in table[4:]]
    return "\n".join(lines + ([""] + notes if notes else []))


def evaluate_modes(
    config,
    checkpoint: str,
    split: str = "test",
    workdir: str | None = None,
    *,
    model=None,
    step: int | None = None,
    log: Callable[[str], None] = print,
) -> ModesResult:
    """Evaluate ``checkpoint`` on ``split`` in every mode of ``config.eval.modes``; ``step``
    picks a training run's checkpoint (default: its latest), or is ``model``'s step."""
    modes = check_modes(config.eval)
    out_dir = as_path(workdir) if workdir else default_out_dir(checkpoint, split)
    mesh, rules = mesh_and_rules_if_any(config)
    if model is None:
        model, step = load_evaluated(checkpoint, config, step, mesh, rules)
    check_model_matches(model.config, from_config_dict(config.model))
    name = config.eval.model_name or resolved(checkpoint).name
    name += "" if step is None or config.eval.model_name else f"@{step}"
    generated = scored = None
    if "generate" in modes:
        generated = evaluate_generation(
            config, checkpoint, split, str(out_dir), model=model, step=step, log=log
        )
    if "likelihood" in modes and jax.process_count() > 1:
        log("[likelihood] runs in one JAX process only: skipped (rerun with one process)")
    elif "likelihood" in modes:
        # Its own lock: the generation's lock on the folder above is released by now.
        (out_dir / SUBDIR).mkdir(parents=True, exist_ok=True)
        with FolderLock(out_dir / SUBDIR, "likelihood evaluation folder"):
            scored = evaluate_likelihood(
                config,
                split,
                out_dir / SUBDIR,
                model=model,
                step=step,
                name=name,
                prompt_hook=eval_prompt_hook(config),
                tokenizer=load_tokenizer(config.data.tokenizer),
                mesh=mesh,
                rules=rules,
                meta={
                    "checkpoint": str(checkpoint),
                    "checkpoint_step": step,
                    "weights": evaluated_weights(checkpoint, config, step),
                    "split": split,
                },
                log=log,
            )
    metrics = {"generate": generated, "likelihood": scored}
    forms = {"likelihood": scored.form} if scored is not None else {}
    table = modes_table({m: r.metrics for m, r in metrics.items() if r is not None}, name, forms)
    if scored is not None and any(scored.unscored.values()):
        table += (
            f"\n\nlikelihood: records left unscored (no finished rationale before "
            f"'Answer:'): {scored.unscored}"
        )
    return ModesResult(generated, scored, out_dir, table)
