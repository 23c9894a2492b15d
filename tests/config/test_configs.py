"""Every EmoLLM config validates; the real-size ones trace; the tiny ones run a forward and
backward pass on real mini EmoBench batches (images and videos mixed). The config argument's
typed key=value pairs and shorthands; runlocal shrinks a 7B config to a run of two steps here."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from emollm_jax.config.args import parse_arg
from emollm_jax.config.model import from_config_dict
from emollm_jax.data.data_config import check_data_config
from emollm_jax.data.pipeline import train_dataset
from emollm_jax.emoprompt import hook_from_config
from emollm_jax.emoprompt.hook import check_emoprompt_config
from emollm_jax.inference.run import check_eval_config
from emollm_jax.models import visual_tokens
from emollm_jax.models.build import abstract_model, build_model
from emollm_jax.models.forward import forward
from emollm_jax.train.loop import run
from emollm_jax.train.loss import loss_sums
from tests.configs import load_config

CONFIGS = [
    ("emollm_tiny", "baseline"),
    ("emollm_tiny", "mp"),
    ("emollm_tiny", "emoprompt"),
    ("emollm_tiny", "full"),
    ("emollm_tiny", "emoprompt_answer_first"),
    ("emollm_tiny", "full_answer_first"),
    ("emollm_7b", "stage1"),
    ("emollm_7b", "stage2"),
    ("emollm_qwen2_7b", "stage1"),
    ("emollm_qwen2_7b", "stage2"),
]


@pytest.mark.parametrize("name, arg", CONFIGS)
def test_config_validates(name, arg):
    c = load_config(name, arg)
    from_config_dict(c.model)
    check_data_config(c.data)
    check_emoprompt_config(c.emoprompt)
    check_eval_config(c.eval)
    assert c.data.video_frames <= max(c.data.frame_buckets)


def test_unknown_variant_is_refused():
    with pytest.raises(ValueError, match="'mpp' is not one of"):
        load_config("emollm_tiny", "mpp")


def test_typed_arguments_and_shorthands_build_the_same_config():
    assert load_config("emollm_7b", "stage=1") == load_config("emollm_7b", "stage1")
    assert load_config("emollm_7b", "stage=2") == load_config("emollm_7b", None)
    assert load_config("llava_7b", " stage = 1 ,") == load_config("llava_7b", "stage1")
    qwen2 = load_config("emollm_7b", "stage=1,backbone=qwen2")
    assert qwen2 == load_config("emollm_qwen2_7b", "stage1")
    assert qwen2.model.text.family == "qwen2" and qwen2.train.stage == 1
    assert load_config("emollm_tiny", "variant=mp") == load_config("emollm_tiny", "mp")
    # stage and variant combine, in either spelling
    c = load_config("emollm_7b", "stage1,variant=baseline")
    assert c == load_config("emollm_7b", "baseline,stage=1")
    assert (c.train.stage, c.train.learning_rate, c.model.projector.type) == (1, 1e-3, "mlp")
    assert not c.emoprompt.guiding_prompts


def test_config_argument_values_take_the_defaults_types():
    args = parse_arg("n=3,rate=0.5,on=false,name=x,off", n=1, rate=1.0, on=True, name="", off=False)
    assert args == dict(n=3, rate=0.5, on=False, name="x", off=True)
    assert type(args["rate"]) is float and type(args["n"]) is int


@pytest.mark.parametrize(
    "name, arg, message",
    [
        ("emollm_7b", "stag=1", r"'stag' is not a key of this config \(stage, backbone, variant,"),
        ("llava_7b", "variant=mp", r"'variant' is not a key of this config \(stage, backbone, "),
        ("llava_7b", "mp", r"'mp' is not one of the shorthands \(stage1, stage2\)"),
        ("emollm_7b", "stage=one", r"stage='one': expected an int"),
        ("emollm_7b", "runlocal=maybe", r"runlocal='maybe': expected a bool"),
        ("emollm_7b", "stage=3", r"stage=3 is not one of \(1, 2\)"),
        ("emollm_7b", "backbone=mistral", r"backbone='mistral' is not one of \('vicuna', "),
        ("emollm_7b", "variant=mpp", r"variant='mpp' is not one of \('baseline',"),
        ("emollm_7b", "stage1,stage=2", r"sets \['stage'\] twice"),
    ],
)
def test_bad_config_argument_is_named(name, arg, message):
    with pytest.raises(ValueError, match=message):
        load_config(name, arg)


def test_the_tiny_configs_hold_the_main_jobs_recipe():
    # python -m emollm_jax.main_job: grounding 1000 steps at 5e-4 (warmup 20), then 1500 at 5e-4
    for c in (load_config("emollm_tiny"), load_config("emollm_tiny", "mp"), load_config()):
        assert c.recipe.to_dict() == dict(
            grounding_steps=1000, grounding_learning_rate=5e-4, grounding_warmup_steps=20
        )
        assert (c.train.steps, c.train.learning_rate, c.train.warmup_steps) == (1500, 5e-4, 20)
        assert c.log.every_steps == 50
        assert c.train.vision_seed == 0  # one vision tower for every seed
    assert load_config("emollm_7b").recipe.grounding_steps == 0  # no grounding phase


def test_answer_first_variants_differ_only_in_the_rationale_position():
    for base in ("emoprompt", "full"):
        first = load_config("emollm_tiny", f"{base}_answer_first")
        assert first.emoprompt.rationale_position == "after_answer"
        first.emoprompt.rationale_position = "before_answer"
        assert first == load_config("emollm_tiny", base)


def test_baseline_variant_is_llava_tiny():
    assert load_config("emollm_tiny", "baseline") == load_config("llava_tiny")


@pytest.mark.parametrize(
    "name, params, projector_params",
    [("emollm_7b", 7.1348e9, 92.35e6), ("emollm_qwen2_7b", 7.9936e9, 74.52e6)],
)
def test_real_size_models_trace(name, params, projector_params):
    cfg = from_config_dict(load_config(name).model)
    assert visual_tokens.tokens_per_media(cfg, "image") == 232
    assert visual_tokens.tokens_per_media(cfg, "video", 8) == 344
    model = abstract_model(cfg)  # shapes only

    def count(module):
        return sum(v.size for _, v in nnx.to_flat_state(nnx.state(module, nnx.Param)))

    assert count(model) == pytest.approx(params, rel=1e-4)
    # Four MLPs into the LLM's width, the global queries' attention, the graph updates.
    assert count(model.projector) == pytest.approx(projector_params, rel=1e-4)
    # One row with an image and an 8-frame video, traced through the whole model.
    n = 232 + 344
    ids = jax.ShapeDtypeStruct((1, n + 64), jnp.int32)
    pixels = jax.ShapeDtypeStruct((1, 9, 3, 336, 336), jnp.float32)
    frame_media = jnp.asarray([[0] + [1] * 8])
    logits = nnx.eval_shape(lambda m, i, p: m(i, p, frame_media=frame_media), model, ids, pixels)
    assert logits.shape == (1, n + 64, cfg.text.vocab_size)


def _batch_with_video(config, tokenizer, max_batches=20):
    """The first batch holding a video. The stream is endless: a config whose buckets drop every
    video (too long for the largest) must fail here, not loop forever."""
    batches = train_dataset(config, prompt_hook=hook_from_config(config), tokenizer=tokenizer)
    for _, batch in zip(range(max_batches), batches):
        if batch["frame_media"].shape[1] > 1:  # the 8-frame bucket: a video is in
            return batch
    raise AssertionError(f"no batch with a video in the first {max_batches}")


@nnx.jit
def _loss_and_grads(model, batch):
    def loss(m):
        total, count = loss_sums(forward(m, batch), batch["labels"])
        return total / count

    return nnx.value_and_grad(loss)(model)


def _mini_batch(arg, mini_dir, tokenizer):
    """A batch of the tiny config ``arg`` on the mini EmoBench, with a video in it; every row's
    image tokens are checked to be exactly what its media make."""
    c = load_config("emollm_tiny", arg)
    c.data.dir = str(mini_dir)
    c.data.batch_size = 4
    c.data.prefetch_buffer = 4
    batch = _batch_with_video(c, tokenizer)
    cfg = from_config_dict(c.model)
    for row_ids, row_media in zip(batch["input_ids"], batch["frame_media"]):
        media, frames = np.unique(row_media[row_media >= 0], return_counts=True)
        kinds = ["video" if n > 1 else "image" for n in frames]
        want = sum(visual_tokens.tokens_per_media(cfg, k, n) for k, n in zip(kinds, frames))
        assert int((row_ids == cfg.image_token_id).sum()) == want
    return cfg, batch


@pytest.mark.parametrize("arg", ["baseline", "mp"])
def test_batches_hold_the_visual_tokens_the_model_makes(arg, mini_dir, tokenizer):
    _mini_batch(arg, mini_dir, tokenizer)


# "full" is the "mp" model on EmoPrompt's longer examples, "emoprompt" the baseline model on
# them: the two compiled programs cover both models (the baseline is llava_tiny's, trained by
# the training tests).
@pytest.mark.slow  # over ~8 s here
@pytest.mark.parametrize("arg", ["emoprompt", "full"])
def test_forward_and_backward_on_a_mini_emobench_batch(arg, mini_dir, tokenizer):
    cfg, batch = _mini_batch(arg, mini_dir, tokenizer)
    model = build_model(cfg, seed=0)
    loss, grads = _loss_and_grads(model, {k: jnp.asarray(v) for k, v in batch.items()})
    assert np.isfinite(float(loss)) and float(loss) > 1.0
    flat = nnx.to_flat_state(nnx.state(grads, nnx.Param))
    norms = {"/".join(map(str, p)): float(jnp.linalg.norm(v[...])) for p, v in flat}
    assert all(np.isfinite(n) for n in norms.values())
    assert all(n > 0 for p, n in norms.items() if p.startswith("projector/")), norms


@pytest.mark.parametrize("name", ["emollm_7b", "llava_7b", "emollm_qwen2_7b"])
def test_runlocal_keeps_the_recipe_at_the_tiny_size(name):
    real, small = load_config(name), load_config(name, "runlocal=True")
    tiny = load_config("emollm_tiny" if name.startswith("emollm") else "llava_tiny")
    assert small.model.vision == tiny.model.vision
    assert small.model.text.hidden_size == tiny.model.text.hidden_size
    assert small.model.text.family == real.model.text.family
    assert small.model.projector.type == real.model.projector.type
    assert small.data.seq_buckets == ((336,) if name.startswith("emollm") else (256,))
    assert small.data.frame_buckets == (8,)
    assert (small.mesh.to_dict(), small.train.stage, small.emoprompt.to_dict()) == (
        real.mesh.to_dict(), real.train.stage, real.emoprompt.to_dict()
    )  # fmt: skip
    assert small.train.steps == 2 and small.train.init_from == "" and small.data.tokenizer == (
        "emollm_jax/assets/tokenizer"
    )
    assert load_config(name, "runlocal") == small


@pytest.mark.slow  # compiles a training step of the tiny multi-perspective model
def test_emollm_7b_runlocal_trains_two_steps(mini_dir, tmp_path):
    c = load_config("emollm_7b", "runlocal=True")
    c.data.dir = str(mini_dir)
    c.log.tensorboard = False
    c.log.progress_bar = "off"
    last = run(c, str(tmp_path / "run"))
    rows = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(row)["step"] for row in rows] == [1, 2]
    assert np.isfinite(last["loss"]) and last["target_tokens"] > 0
