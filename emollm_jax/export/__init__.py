"""Exports for users of other frameworks.

``hf_emollm``: EmoLLM (multi-perspective projector) as a transformers PyTorch model; the
converter (``python -m emollm_jax.convert orbax-to-hf``) writes EmoLLM checkpoints in its
layout (``emollm_layout.py``: config mapping; the tensor names are in
``emollm_jax/convert/name_table.py``).
"""
