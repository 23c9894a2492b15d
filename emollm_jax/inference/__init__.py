"""Running models: the applications' side of evaluation (JAX), apart from the scoring library.

- ``load.py``: the one loader of a model to run (a Hugging Face folder or an Orbax training
  run), for training's ``init_from``, evaluation and EmoPrompt's teacher;
- ``run.py``: a generation evaluation run (mesh, the generation loop, resumable predictions);
- ``likelihood_run.py`` with ``option_scorer.py``: the option-likelihood evaluation run;
- ``annotate.py``: EmoPrompt's teacher writes rationales for a split (``emollm annotate``);
- ``modes.py``: every mode of ``config.eval.modes`` from one loaded model
  (what ``python -m emollm_jax.evaluate`` calls).

Parsing, metrics and result files are ``emollm_jax.eval`` (no JAX).
"""
