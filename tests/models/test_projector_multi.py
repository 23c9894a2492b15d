"""The multi-perspective projector: token counts and shapes, video rows, gradients, config
validation (the patch-only case that must be LLaVA's projector is in test_compose.py)."""

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from emollm_jax.config.model import from_config_dict
from emollm_jax.errors import ConfigError
from emollm_jax.models import visual_tokens
from emollm_jax.models.build import abstract_model, build_model
from tests.configs import load_config

# The tiny EmoLLM: 4x4 patch grid, text hidden 64.
EXPECTED = {"patch": 16, "depth": 4, "relation": 16, "global": 4}


def tiny_cfg(**projector):
    model = load_config("emollm_tiny", "full").model.to_dict()
    model["projector"].update(projector)
    return from_config_dict(model)


@pytest.fixture(scope="module")
def model():
    return build_model(tiny_cfg(), seed=0)


def _pixels(seed, *shape):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


def test_token_counts_follow_the_config():
    cfg = tiny_cfg()
    assert visual_tokens.perspective_tokens(cfg) == EXPECTED
    assert visual_tokens.tokens_per_media(cfg, "image") == 40
    assert visual_tokens.tokens_per_media(cfg, "video", 8) == 36 + 8 * 4
    assert visual_tokens.tokens_per_media(cfg, "video", 1) == 40
    frames = tiny_cfg(video="frames")
    assert visual_tokens.tokens_per_media(frames, "video", 8) == 8 * 40
    pooled = tiny_cfg(patch_pool=2, depth_pool=4, relation_pool=2, relation_k=3)
    assert visual_tokens.perspective_tokens(pooled) == {
        "patch": 4,
        "depth": 1,
        "relation": 4,
        "global": 4,
    }
    full = dataclasses.replace(pooled, vision_feature_select_strategy="full")
    assert visual_tokens.perspective_tokens(full)["patch"] == 5  # the class token stays
    only_global = tiny_cfg(perspectives=("global",), global_queries=3)
    assert visual_tokens.tokens_per_media(only_global, "video", 8) == 24
    no_global = tiny_cfg(perspectives=("patch", "depth"))
    assert visual_tokens.tokens_per_media(no_global, "video", 8) == 20
    baseline = from_config_dict(load_config("emollm_tiny", "baseline").model)
    assert visual_tokens.tokens_per_media(baseline, "image") == 16
    assert visual_tokens.tokens_per_media(baseline, "video", 8) == 128


def test_pooled_options_give_their_shapes():
    cfg = tiny_cfg(
        patch_pool=2,
        depth_pool=4,
        depth_layers=(0, -1),
        relation_pool=2,
        relation_k=3,
        relation_rounds=2,
        global_queries=2,
        perspective_embedding=False,
    )
    cfg = dataclasses.replace(cfg, vision_feature_select_strategy="full")
    model = abstract_model(cfg)  # shapes only: nothing is computed
    assert model.projector.embedding is None
    out = nnx.eval_shape(lambda m, x: m.image_features(x), model, _pixels(1, 2, 3, 64, 64))
    assert out.shape == (2, 5 + 1 + 4 + 2, 64)


# Row 0: an image, then a 3-frame video. Row 1: a 2-frame video, two padding frames.
FRAME_MEDIA = np.asarray([[0, 1, 1, 1], [0, 0, -1, -1]])


@pytest.fixture(scope="module")
def probe(model):
    """One compiled program: the vision states of 2 x 4 frames, each perspective's tokens, the
    per-frame parts and the rows in both video modes."""
    frames_cfg = dataclasses.replace(
        model.config, projector=dataclasses.replace(model.config.projector, video="frames")
    )

    @nnx.jit
    def run(model, pixels, frame_media):
        states = model.vision_states(pixels.reshape(8, 3, 64, 64))
        projector = model.projector
        out = {name: projector.perspectives[name](states) for name in EXPECTED}
        out["states"] = states
        out["images"] = projector.images(states)
        out["local"], out["global"] = projector.parts(states)
        out["rows"] = projector.rows(states, frame_media, 2, 4)
        projector.model_cfg = frames_cfg
        out["frames_rows"] = projector.rows(states, frame_media, 2, 4)
        projector.model_cfg = model.config
        return out

    out = run(model, _pixels(2, 2, 4, 3, 64, 64), jnp.asarray(FRAME_MEDIA))
    assert model.projector.model_cfg.projector.video == "pooled"  # not changed outside
    return out


def test_each_perspective_gives_its_tokens(probe):
    assert probe["states"].shape == (3, 8, 17, 32)  # embeddings + 2 layers; class + 16 patches
    for name, count in EXPECTED.items():
        assert probe[name].shape == (8, count, 64), name
    assert probe["images"].shape == (8, 40, 64)


def test_video_rows_pool_time_and_keep_per_frame_global_tokens(model, probe):
    local = probe["local"].reshape(2, 4, 36, 64)
    global_ = probe["global"].reshape(2, 4, 4, 64)
    image = jnp.concatenate([local[0, 0], global_[0, 0]])
    video_a = jnp.concatenate([local[0, 1:4].mean(0), *global_[0, 1:4]])
    video_b = jnp.concatenate([local[1, :2].mean(0), *global_[1, :2]])
    cfg = model.config
    assert len(image) == visual_tokens.tokens_per_media(cfg, "image")
    assert len(video_a) == visual_tokens.tokens_per_media(cfg, "video", 3)
    assert len(video_b) == visual_tokens.tokens_per_media(cfg, "video", 2)
    rows = probe["rows"]
    assert rows.shape == (2, 4 * 40, 64)
    np.testing.assert_allclose(rows[0, :88], jnp.concatenate([image, video_a]), atol=1e-5)
    np.testing.assert_allclose(rows[1, :44], video_b, atol=1e-5)


def test_frames_mode_treats_each_frame_as_an_image(probe):
    np.testing.assert_allclose(probe["frames_rows"], probe["images"].reshape(2, 160, 64))


def test_pooled_video_needs_frame_media(model):
    ids = jnp.full((1, 8), 5)
    with pytest.raises(ValueError, match="frame_media"):
        nnx.eval_shape(lambda m, x: m(ids, x), model, _pixels(4, 1, 2, 3, 64, 64))


def test_gradients_reach_every_projector_parameter(model):
    # Rows with an image and a 2-frame video, and a padded row with one video.
    frame_media = jnp.asarray([[0, 1, 1], [0, 0, -1]])
    states = model.vision_states(_pixels(5, 6, 3, 64, 64))
    weights = _pixels(6, 2, 3 * 40, 64)

    def loss(projector):
        return jnp.mean(projector.rows(states, frame_media, 2, 3) * weights)

    grads = nnx.jit(nnx.grad(loss))(model.projector)
    flat = nnx.to_flat_state(nnx.state(grads, nnx.Param))
    assert {path[1] for path, _ in flat if path[0] == "perspectives"} == set(EXPECTED)
    assert any(path[0] == "embedding" for path, _ in flat)
    for path, v in flat:
        assert float(jnp.abs(v[...]).max()) > 0, "/".join(map(str, path))


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("type", "conv", "type: 'conv' is not one of"),
        ("perspectives", ("patch", "mood"), "perspectives: 'mood' is not one of"),
        ("perspectives", ("patch", "patch"), "names a perspective twice"),
        ("perspectives", (), "enable at least one"),
        ("patch_pool", 3, "patch_pool: 3 does not divide the 4x4 grid"),
        ("depth_pool", 0, "depth_pool: must be positive"),
        ("relation_k", 16, "relation_k: 16 must be below the 16 nodes"),
        ("depth_layers", (0, 5), "depth_layers: 5 is outside [-3, 2]"),
        ("depth_layers", (2, -1), "names a layer twice"),
        ("global_queries", 0, "global_queries: must be positive"),
        ("video", "mean", "video: 'mean' is not one of"),
        ("perspectives", "patch", "perspectives: expected a tuple, got 'patch'"),
        ("perspective_embedding", 1, "perspective_embedding: expected a bool"),
    ],
)
def test_bad_projector_fields_are_named(field, value, message):
    with pytest.raises(ConfigError, match=f"^config.model.projector.{field}") as e:
        tiny_cfg(**{field: value})
    assert message in str(e.value)


def test_the_mlp_projector_keeps_llava_video_frames():
    c = load_config("emollm_tiny", "baseline")
    c.model.projector.video = "pooled"
    with pytest.raises(ConfigError, match="config.model.projector.video: the 'mlp' projector"):
        from_config_dict(c.model)


def test_vision_layers_run_only_as_deep_as_needed():
    shallow = abstract_model(tiny_cfg(perspectives=("patch", "global")))
    assert shallow.projector.vision_layers == 1  # vision_feature_layer -2 of 2 layers
    states = nnx.eval_shape(lambda m, x: m.vision_states(x), shallow, _pixels(8, 1, 3, 64, 64))
    assert states.shape[0] == 2


def test_zeroed_perspectives_zero_their_tokens_only(model):
    """The probe setting: the zeroed perspective's slice of the projector output is zero, the
    other perspectives' tokens are what the intact model gives, the count is unchanged."""
    pixels = _pixels(7, 2, 3, 64, 64)
    intact = np.asarray(model.image_features(pixels))
    start = {"patch": 0, "depth": 16, "relation": 20, "global": 36}
    intact_cfg = model.projector.model_cfg
    for name, count in EXPECTED.items():
        # The same weights; the setting is read when the projector runs.
        model.projector.model_cfg = dataclasses.replace(intact_cfg, zeroed_perspectives=(name,))
        try:
            out = np.asarray(model.image_features(pixels))
        finally:
            model.projector.model_cfg = intact_cfg
        assert out.shape == intact.shape
        zeroed = slice(start[name], start[name] + count)
        np.testing.assert_array_equal(out[:, zeroed], 0.0)
        assert np.abs(intact[:, zeroed]).max() > 0
        keep = np.ones(out.shape[1], bool)
        keep[zeroed] = False
        np.testing.assert_allclose(out[:, keep], intact[:, keep], atol=1e-6)


@pytest.mark.parametrize(
    "zeroed, message",
    [(("depht",), "depht"), ("relation", "expected a tuple")],
)
def test_bad_zeroed_perspectives_are_named(zeroed, message):
    with pytest.raises(ConfigError, match=rf"model\.zeroed_perspectives.*{message}"):
        dataclasses.replace(tiny_cfg(), zeroed_perspectives=zeroed)


def test_zeroed_perspectives_need_the_multi_perspective_projector():
    baseline = from_config_dict(load_config("emollm_tiny", "baseline").model)
    with pytest.raises(ConfigError, match="model.zeroed_perspectives.*multi_perspective"):
        dataclasses.replace(baseline, zeroed_perspectives=("patch",))


def test_a_perspective_that_is_off_cannot_be_zeroed():
    cfg = tiny_cfg(perspectives=("patch", "global"))
    with pytest.raises(ConfigError, match="model.zeroed_perspectives.*relation"):
        dataclasses.replace(cfg, zeroed_perspectives=("relation",))
