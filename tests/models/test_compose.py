"""EmoLLM's initial weights from pretrained parts, and the patch-only projector that must be
LLaVA's exactly (same weights, same logits as transformers)."""

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from jax.sharding import PartitionSpec

import emollm_jax
from emollm_jax.config.model import ProjectorConfig
from emollm_jax.models.compose import compose
from emollm_jax.sharding.mesh import make_mesh
from emollm_jax.sharding.strategies import get_rules
from tests import hf_models

pytestmark = pytest.mark.torch


def _multi(cfg, **projector):
    fields = dict(type="multi_perspective", video="pooled", relation_k=2, global_queries=2)
    return dataclasses.replace(
        cfg, projector=dataclasses.replace(cfg.projector, **{**fields, **projector})
    )


def _flat(module):
    return dict(nnx.to_flat_state(nnx.state(module, nnx.Param)))


def _same(a, b):
    assert a.keys() == b.keys()
    for path in a:
        np.testing.assert_array_equal(a[path][...], b[path][...], err_msg="/".join(path))


@pytest.fixture(scope="module")
def llava(tmp_path_factory):
    hf = hf_models.llava()
    return hf, emollm_jax.load_hf(hf_models.save(hf, tmp_path_factory.mktemp("llava")))


@nnx.jit
def _both(multi, baseline, ids, pixels):
    """Both models' logits, and the multi-perspective one's through the [B, F] layout."""
    frame_media = jnp.zeros((ids.shape[0], 1), jnp.int32)
    rows = multi(ids, pixels[:, None], frame_media=frame_media)
    return multi(ids, pixels), baseline(ids, pixels), rows


def test_patch_only_projector_is_the_llava_baseline(llava):
    hf, baseline = llava
    cfg = _multi(baseline.config, perspectives=("patch",), perspective_embedding=False)
    multi = compose(cfg, source=baseline)
    _same(_flat(multi.projector.perspectives["patch"].mlp), _flat(baseline.projector))

    rng = np.random.default_rng(7)
    n = hf_models.image_tokens("default")
    ids = np.asarray([[1] + [hf_models.IMAGE_TOKEN] * n + list(rng.integers(3, 100, size=6))])
    pixels = rng.standard_normal((1, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        ref = hf(input_ids=torch.tensor(ids), pixel_values=torch.tensor(pixels)).logits.numpy()
    ours, theirs, rows = _both(multi, baseline, jnp.asarray(ids), jnp.asarray(pixels))
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
    assert float(np.abs(np.asarray(ours) - ref).max()) < 1e-4
    np.testing.assert_allclose(rows, ours, atol=1e-6)


def test_full_emollm_from_llava_keeps_its_towers(llava):
    _, baseline = llava
    model = compose(_multi(baseline.config), source=baseline, seed=1)
    _same(_flat(model.vision_tower), _flat(baseline.vision_tower))
    _same(_flat(model.language_model), _flat(baseline.language_model))
    _same(_flat(model.projector.perspectives["patch"].mlp), _flat(baseline.projector))
    queries = model.projector.perspectives["global"].queries[...]
    assert float(jnp.abs(queries).max()) > 0  # fresh, initialised
    assert model.config.projector.type == "multi_perspective"


def test_parts_from_separate_vision_and_llm_folders(llava, tmp_path):
    _, baseline = llava
    clip = emollm_jax.load_hf(hf_models.save(hf_models.clip_vision(), tmp_path / "clip"))
    llm = emollm_jax.load_hf(hf_models.save(hf_models.llama(), tmp_path / "llama"))
    model = compose(_multi(baseline.config), vision=clip, language_model=llm, seed=2)
    _same(_flat(model.vision_tower), _flat(clip))
    _same(_flat(model.language_model), _flat(llm))
    wrong = dataclasses.replace(baseline.config, projector=ProjectorConfig())
    small = dataclasses.replace(wrong.text, hidden_size=32, num_heads=2, num_kv_heads=1)
    with pytest.raises(ValueError, match="language_model: the pretrained part"):
        compose(dataclasses.replace(wrong, text=small), language_model=llm)


def test_fresh_parameters_are_created_in_their_shardings(tmp_path):
    mesh = make_mesh({"data": 1, "fsdp": 4, "tensor": 2})
    rules = get_rules("fsdp_tp")
    baseline = emollm_jax.load_hf(
        hf_models.save(hf_models.llava(), tmp_path / "llava"), mesh=mesh, rules=rules
    )
    model = compose(_multi(baseline.config), source=baseline, mesh=mesh, rules=rules)
    fresh = model.projector.perspectives["relation"].mlp.linear_1.kernel[...]  # [embed, mlp]
    assert fresh.sharding.spec == PartitionSpec("fsdp", "tensor")
    carried = model.language_model.embed_tokens.embedding[...]
    assert carried.sharding == baseline.language_model.embed_tokens.embedding[...].sharding
