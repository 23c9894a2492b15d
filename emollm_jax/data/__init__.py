"""EmoBench data: records on disk -> checked records -> examples -> batches -> global arrays.

In data-flow order:

- ``records.py``: the record format (JSONL, LLaVA JSON) and its checks; ``bad_input.py``: skip,
  count and log bad records, or raise in strict mode.
- ``emobench_tfds.py``: the same records as a TFDS ArrayRecord data set (media as bytes).
- ``media.py`` (Pillow / PyAV decoding), ``clip_preprocess.py`` (resize, crop, normalise).
- ``chat_templates.py`` (Vicuna v1, ChatML, the tokenizer's own), ``example_encoder.py`` (one
  record -> token ids, labels, image spans, pixels; the EmoPrompt hook runs first).
- ``batching.py`` (the batch contract, buckets, packing, left-padded eval prompts),
  ``pipeline.py`` (the Grain pipeline), ``global_batch.py`` (per-process -> global jax.Array),
  ``data_config.py`` (checks of ``config.data``).
- Made by code, in ``mini/`` (apart from the runtime pipeline): ``make_mini_emobench.py`` with
  ``draw_faces.py`` (the mini EmoBench) and ``make_tokenizer.py`` (the tokenizer shipped in
  ``emollm_jax/assets/tokenizer``).
"""
