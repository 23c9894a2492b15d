"""Data made by code, apart from the runtime pipeline: the mini EmoBench and our tokenizer.

- ``make_mini_emobench.py`` (``python -m emollm_jax.data.mini.make_mini_emobench``) with
  ``draw_faces.py``: a synthetic EmoBench-shaped data set (cartoon faces, short videos) whose
  labels follow from what is drawn; ``--version 2`` and ``--version 3`` use
  ``scene_rules.py``'s labelling rules (the public sources' phenomena) and ``draw_scenes.py``'s
  scene pieces; ``texts.py`` holds the captions, prompts and rationale phrases all versions
  share;
- ``make_tokenizer.py`` (``python -m emollm_jax.data.mini.make_tokenizer``): the small BPE
  tokenizer shipped in ``emollm_jax/assets/tokenizer``, trained on a mini EmoBench.
"""

# The version the ablation and the main job report on, and where they build it unless told.
REPORTED_VERSION = 3
REPORTED_DIR = f"data/mini_emobench_v{REPORTED_VERSION}"
