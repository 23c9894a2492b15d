"""Hugging Face <-> our models and Orbax checkpoints.

- ``hf_io``: ``load_hf`` / ``save_hf`` (in memory), on ``name_table`` + ``transforms`` +
  ``hf_config`` + ``safetensors_io``;
- ``python -m emollm_jax.convert`` (``cli``): streamed HF <-> Orbax conversion
  (``hf_to_orbax``, ``orbax_to_hf`` on ``orbax_stream``, ``side_files``, ``lora_export``,
  ``dtypes``) with ``--verify`` (``verify``);
- EmoLLM checkpoints in the layout of its PyTorch export (``emollm_jax/export/hf_emollm``):
  ``emollm_layout`` (config.json and code files), ``processor_files``, ``model_card``.
"""
