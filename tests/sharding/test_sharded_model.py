"""The LLaVA model created directly sharded on 8 devices, and its logits."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from emollm_jax.config.model import ModelConfig, TextConfig, VisionConfig
from emollm_jax.models.build import build_model
from emollm_jax.sharding.context import use_mesh_rules
from emollm_jax.sharding.mesh import MeshError, make_mesh, resolve_shape
from emollm_jax.sharding.strategies import get_rules

CFG = ModelConfig(
    arch="llava",
    vision=VisionConfig(
        hidden_size=32, intermediate_size=64, num_layers=2, num_heads=4, image_size=32, patch_size=8
    ),
    text=TextConfig(
        vocab_size=256,
        hidden_size=64,
        intermediate_size=128,
        num_layers=2,
        num_heads=4,
        num_kv_heads=2,
    ),
    image_token_id=255,
)


def _inputs():
    rng = np.random.default_rng(0)
    ids = np.concatenate([np.full((8, 16), 255), rng.integers(3, 200, (8, 8))], axis=1)
    pixels = rng.standard_normal((8, 1, 3, 32, 32)).astype(np.float32)
    return jnp.asarray(ids), jnp.asarray(pixels)


@pytest.mark.slow  # over ~8 s here
def test_fsdp_model_is_created_sharded_and_computes_the_same_logits():
    assert jax.device_count() == 8
    mesh = make_mesh({"data": 1, "fsdp": 8, "tensor": 1})
    rules = get_rules("fsdp")
    model = build_model(CFG, 0, mesh=mesh, rules=rules)
    params = nnx.state(model, nnx.Param)
    total = sum(x.nbytes for x in jax.tree.leaves(params))
    per_device = [0] * 8
    for x in jax.tree.leaves(params):
        for shard in x.addressable_shards:
            per_device[shard.device.id] += shard.data.nbytes
    # every weight matrix is split; only norms, small biases stay whole
    assert max(per_device) < 1.2 * total / 8, (per_device, total)
    embed = model.language_model.embed_tokens.embedding[...]
    assert embed.sharding.spec == jax.sharding.PartitionSpec(None, "fsdp")
    assert embed.addressable_shards[0].data.shape == (256, 8)

    single = build_model(CFG, 0)
    ids, pixels = _inputs()
    expected = nnx.jit(lambda m, i, p: m(i, p))(single, ids, pixels)

    @nnx.jit
    def sharded_forward(m, i, p):
        with use_mesh_rules(mesh, rules):
            return m(i, p)

    batch = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(("data", "fsdp")))
    got = sharded_forward(model, jax.device_put(ids, batch), jax.device_put(pixels, batch))
    assert got.addressable_shards[0].data.shape[0] == 1  # the batch is split over 8 devices
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("strategy", ["tp", "fsdp_tp"])
def test_tensor_parallel_rules_split_heads(strategy):
    mesh = make_mesh({"data": 1, "fsdp": -1, "tensor": 2})
    model = build_model(CFG, 0, mesh=mesh, rules=get_rules(strategy))
    q = model.language_model.layers.attn.q.kernel[...]  # [layers, embed, heads, head_dim]
    assert q.sharding.spec[2] == "tensor"
    assert q.addressable_shards[0].data.shape[2] == 2


def test_mesh_shape_errors_name_the_numbers():
    assert resolve_shape({"data": -1, "tensor": 2}, 8) == (4, 1, 2)
    with pytest.raises(MeshError, match="needs 6 devices, but 8"):
        resolve_shape({"data": 3, "fsdp": 2}, 8)
    with pytest.raises(MeshError, match="only one axis may be -1"):
        resolve_shape({"data": -1, "fsdp": -1}, 8)
    with pytest.raises(MeshError, match="unknown axis 'pipeline'"):
        resolve_shape({"pipeline": 2}, 8)


def test_slice_errors_name_their_field():
    """Devices of several slices (stand-ins: only their ``slice_index`` is read first)."""
    from types import SimpleNamespace

    def devices(*slices):
        return [SimpleNamespace(slice_index=i) for i in slices]

    with pytest.raises(MeshError) as uneven:
        make_mesh({"data": -1}, devices(0, 1, 1))
    assert uneven.value.field == "mesh.shape"
    assert str(uneven.value) == "config.mesh.shape: 3 devices cannot be split evenly into 2 slices"
    with pytest.raises(MeshError) as across:
        make_mesh({"data": -1}, devices(0, 0, 1, 1), dcn_axis="pipeline")
    assert across.value.field == "mesh.strategy"
    assert "its axis across slices, 'pipeline', is not a mesh axis" in str(across.value)
