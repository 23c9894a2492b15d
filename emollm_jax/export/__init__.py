"""Exports for users of other frameworks: only the PyTorch package.

``hf_emollm``: EmoLLM (multi-perspective projector) as a transformers PyTorch model. The
converter (``python -m emollm_jax.convert orbax-to-hf``) writes EmoLLM checkpoints in its
layout: the config mapping and code files in ``emollm_jax/convert/emollm_layout.py``, the
processor files and model card in ``convert/processor_files.py`` and ``convert/model_card.py``,
the tensor names in ``convert/name_table.py``.
"""
