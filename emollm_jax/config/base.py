"""Fields every experiment config shares; the presets (``presets.py``) fill in or override
their own."""

import dataclasses

from ml_collections import config_dict

from emollm_jax.config.model import FORWARD_ONLY, ModelConfig


def forward_options(**overrides) -> dict:
    """``config.model`` fields that choose how the forward pass runs (dtypes, layer scan, remat,
    the attention implementation; no parameter depends on them), at ModelConfig's defaults
    unless overridden: a config that spreads them into its model dict lets every one be set on
    the command line (``--config.model.attention=splash``)."""
    options = {f.name: f.default for f in dataclasses.fields(ModelConfig) if f.name in FORWARD_ONLY}
    unknown = set(overrides) - set(options)
    if unknown:
        raise ValueError(f"not forward-pass options: {sorted(unknown)}")
    return {**options, **overrides}


def base_config() -> config_dict.ConfigDict:
    c = config_dict.ConfigDict()
    c.seed = 0
    # Filled by the presets (see emollm_jax/config/model.py for the fields).
    c.model = config_dict.ConfigDict()
    # The data pipeline (emollm_jax/data/).
    c.data = config_dict.ConfigDict(
        dict(
            # EmoBench-format folder holding {train,validation,test}.jsonl and media. Make the
            # mini EmoBench with `emollm data mini DIR`, or set
            # make_mini_if_missing to have the pipeline make it when `dir` does not exist.
            dir="data/mini_emobench",
            make_mini_if_missing=False,
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
            # Training stops (naming the reasons and counts) after this many records in a row
            # are refused: a stream that refuses everything would never yield a batch. 0: no
            # bound.
            max_consecutive_bad=1000,
            # Largest image (or video frame) accepted, in pixels (decompression bombs).
            max_pixels=16_000_000,
        )
    )
    # EmoPrompt (emollm_jax/emoprompt/; texts in templates.py): the data pipeline's prompt hook.
    c.emoprompt = config_dict.ConfigDict(
        dict(
            # Append a line naming the task's cues and the exact answer format to instructions.
            guiding_prompts=False,
            # Train on "<rationale>\nAnswer: <label>" for records that have a rationale.
            rationale_targets=False,
            # Where the rationale goes: "before_answer" ("<rationale>\nAnswer: <label>") or
            # "after_answer" ("Answer: <label>\n<rationale>").
            rationale_position="before_answer",
            # Rationales from `python -m emollm_jax.emoprompt.annotate` (JSONL of {id,
            # rationale}) replacing the records' own; "" = the records' own.
            rationales_file="",
        )
    )
    # Training (emollm_jax/train/).
    c.train = config_dict.ConfigDict(
        dict(
            steps=300,
            # 1: only the projector learns (vision encoder and LLM frozen);
            # 2: projector + LLM (+ the vision encoder when train_vision).
            stage=2,
            train_vision=False,
            learning_rate=1e-3,
            warmup_steps=20,
            # Cosine decay from learning_rate to learning_rate * end_lr_ratio at `steps`.
            end_lr_ratio=0.1,
            b1=0.9,
            b2=0.999,
            eps=1e-8,
            # Decoupled weight decay on matrices only (never on norms, biases, vectors).
            weight_decay=0.0,
            grad_clip_norm=1.0,
            # Microbatches per step, accumulated inside one jitted step.
            grad_accum_steps=1,
            # Loss over this many positions at a time, from the hidden states (no
            # [batch, seq, vocab] logits in memory; train/loss.py). 0: the full logits at once.
            loss_chunk=0,
            # Non-finite loss or gradient: the update is skipped and counted; this many in a
            # row stop the run (after a checkpoint is saved).
            max_consecutive_nonfinite=5,
            # Initial weights: a Hugging Face LLaVA/LLM folder (emollm_jax.load_hf; parts
            # carried into the configured model) or an Orbax run or checkpoint folder of this
            # model (parameters only; a fresh optimizer). Empty: random init.
            init_from="",
            # Pretrained parts for a LLaVA/EmoLLM model from separate HF folders: a CLIP
            # vision tower and an LLM (override init_from's parts).
            init_vision_from="",
            init_llm_from="",
            # A jax.profiler trace of steps start_step .. start_step + num_steps - 1 (counted
            # from 1) under <workdir>/tensorboard; num_steps 0 = off.
            profile=dict(start_step=3, num_steps=0),
            # Resume from this checkpoint step instead of the latest (-1): e.g. when the
            # latest cannot be read. Later checkpoints are moved to
            # <workdir>/abandoned_checkpoints/ (kept), so those steps can be saved again.
            resume_step=-1,
            # JAX's persistent compilation cache, so that a restart loads the compiled step:
            # "" = $JAX_COMPILATION_CACHE_DIR if set, else <workdir>/compile_cache; a folder or
            # gs:// URL; "off". (train/compile_cache.py)
            compile_cache_dir="",
            # The hang watchdog (train/watchdog.py): no step finished for this long -> stacks
            # dumped, a `hang` event, exit status 75. 0: derived from the measured step time
            # (20x the median, at least 600 s). The compile and first steps get their own limit.
            hang_timeout_s=0.0,
            hang_first_step_timeout_s=3600.0,
        )
    )
    # Device mesh and sharding strategy (emollm_jax/sharding/).
    c.mesh = config_dict.ConfigDict(
        dict(
            shape=dict(data=-1, fsdp=1, tensor=1),
            # A rule table of emollm_jax/sharding/strategies.py: dp | fsdp | tp | fsdp_tp.
            strategy="dp",
            # Per-name overrides of that table, e.g. {"vocab": None}.
            rules=config_dict.placeholder(dict),
        )
    )
    # Orbax checkpoints under <workdir>/checkpoints.
    # Local tier (checkpoint/tiers.py): also every `local_every_steps` steps into
    # `local_dir` on each host's own disk or RAM disk (e.g. /dev/shm/<run>), keeping
    # `local_keep`; a restart resumes from the newest step complete on every host in either
    # tier. "" = no local tier. One local_dir per run.
    c.checkpoint = config_dict.ConfigDict(
        dict(
            every_steps=100,
            keep=3,
            async_save=True,
            local_dir="",
            local_every_steps=10,
            local_keep=2,
        )
    )
    # Logging: metrics.jsonl (process 0), TensorBoard events, a progress bar on a terminal.
    c.log = config_dict.ConfigDict(dict(every_steps=10, tensorboard=True, progress_bar="auto"))
    # The main job's recipe (python -m emollm_jax.main_job): first `grounding_steps` steps
    # with EmoPrompt off (bare-label targets) into <workdir>/grounding, at their own peak
    # learning rate and warmup (checkpoints at half-way and the end); then config.train from
    # those weights. 0: no grounding phase. python -m emollm_jax.train ignores this section.
    c.recipe = config_dict.ConfigDict(
        dict(grounding_steps=0, grounding_learning_rate=1e-3, grounding_warmup_steps=20)
    )
    # Multi-host: jax.distributed.initialize when "auto" finds a cluster (Cloud TPU, SLURM,
    # JAX_COORDINATOR_ADDRESS) or when forced on; the fields override what JAX detects.
    c.distributed = config_dict.ConfigDict(
        dict(
            initialize="auto",  # auto | on | off
            coordinator_address="",
            num_processes=0,
            process_id=-1,
            cpu_collectives="gloo",
        )
    )
    # Evaluation (python -m emollm_jax.evaluate; emollm_jax/inference/run.py). Prompts are batched
    # by the data pipeline's eval mode: batch size data.eval_batch_size, prompt length
    # bucketed by data.seq_buckets (one compiled decoding program per bucket).
    c.eval = config_dict.ConfigDict(
        dict(
            # Room for an EmoPrompt rationale and its "Answer:" line (the mini EmoBench's
            # take at most 42 tokens); the loop ends earlier once every row has stopped.
            max_new_tokens=64,
            # Greedy when temperature is 0; else sampling with top_k (0 = off) and top_p
            # (1.0 = off), keyed by seed.
            temperature=0.0,
            top_k=0,
            top_p=1.0,
            seed=0,
            # Tokens that end an answer besides the model's eos ids (names the tokenizer
            # lacks are ignored), and strings the decoded answer is cut at.
            stop_tokens=("</s>", "<|im_end|>"),
            stop_strings=("USER:", "ASSISTANT:"),
            # Evaluate only the first `limit` records of the split (0 = all).
            limit=0,
            # Confusion-matrix PNGs next to results.json.
            plots=True,
            # Row label of the results table ("" = the checkpoint folder's name, + @step for a run).
            model_name="",
            # How answers are read (emollm_jax/inference/modes.py): "generate" (free generation,
            # parsed) and "likelihood" (the most likely option on the closed-answer sub-tasks,
            # files in <eval folder>/likelihood); both are reported side by side.
            modes=("generate", "likelihood"),
            # Likelihood mode compares options by their summed log-probability ("none") or its
            # mean per token ("tokens"); emollm_jax/eval/likelihood.py says why "none".
            likelihood_norm="none",
        )
    )
    return c
