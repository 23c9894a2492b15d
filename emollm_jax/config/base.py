"""Fields every experiment config shares; each config file fills in or overrides its own."""

from ml_collections import config_dict


def base_config() -> config_dict.ConfigDict:
    c = config_dict.ConfigDict()
    c.seed = 0
    # Filled by each config file (see emollm_jax/models/config.py for the fields).
    c.model = config_dict.ConfigDict()
    # The data pipeline (emollm_jax/data/).
    c.data = config_dict.ConfigDict(
        dict(
            # EmoBench-format folder holding {train,validation,test}.jsonl and media; the main
            # job builds the mini EmoBench here when it is missing.
            dir="data/mini_emobench",
            tokenizer="emollm_jax/assets/tokenizer",
            # vicuna_v1 | chatml | tokenizer (the tokenizer's own chat_template).
            chat_template="vicuna_v1",
            # Frames sampled uniformly from each video.
            video_frames=8,
            # Where records come from: "jsonl" (the split files) or "tfds" (ArrayRecord shards
            # built from `dir` into `tfds_dir`, default `<dir>/tfds`, on first use).
            source="jsonl",
            tfds_dir="",
            # Global batch sizes (split evenly over JAX processes).
            batch_size=8,
            eval_batch_size=16,
            # Sequences are padded to the smallest bucket that fits the longest row of the
            # batch; longer examples are skipped ("too_long").
            seq_buckets=(128, 256),
            # Frames per row (the F of pixel_values [B, F, C, H, W]): the smallest bucket that
            # fits the row with the most frames (an image is 1 frame, a video video_frames);
            # packed rows always use the largest. Rows needing more are skipped.
            frame_buckets=(1, 8),
            # Pack several examples per row (Grain first-fit packing to the largest buckets).
            pack=False,
            seed=0,
            shuffle=True,
            num_epochs=0,  # 0 = repeat forever (training)
            # Decoding parallelism: threads in this process, and Grain worker processes.
            read_threads=2,
            prefetch_buffer=16,
            worker_count=0,
            worker_buffer_size=2,
            # Bad input: skip and count (False) or raise on the first bad record (True).
            strict=False,
            # Largest image (or video frame) accepted, in pixels (decompression bombs).
            max_pixels=16_000_000,
        )
    )
    return c
