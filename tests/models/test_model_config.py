"""ModelConfig checks itself however it is built, against the registries that implement its
values, and every model carries the config it was built from."""

import dataclasses

import pytest

from emollm_jax.config.model import (
    LoraConfig,
    ModelConfig,
    ProjectorConfig,
    TextConfig,
    VisionConfig,
)
from emollm_jax.errors import ConfigError
from emollm_jax.models import remat
from emollm_jax.models.build import ARCHS, abstract_model
from emollm_jax.models.layers import ACTIVATIONS
from emollm_jax.models.llava import PROJECTORS
from emollm_jax.models.perspectives import PERSPECTIVE_MODULES

TEXT = TextConfig(
    vocab_size=97, hidden_size=32, intermediate_size=64, num_layers=2, num_heads=4, num_kv_heads=2
)
VISION = VisionConfig(
    hidden_size=32, intermediate_size=64, num_layers=2, num_heads=4, image_size=32, patch_size=8
)
LLAVA = ModelConfig(arch="llava", vision=VISION, text=TEXT, image_token_id=96)
BY_ARCH = {
    "llava": LLAVA,
    "llama": ModelConfig(arch="llama", vision=None, projector=None, text=TEXT),
    "qwen2": ModelConfig(arch="qwen2", vision=None, projector=None, text=TEXT),
    "clip_vision": ModelConfig(arch="clip_vision", text=None, projector=None, vision=VISION),
}


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: dataclasses.replace(LLAVA, remat="most"), r"^config\.model\.remat: 'most'"),
        (lambda: dataclasses.replace(LLAVA, arch="gpt2"), r"^config\.model\.arch: 'gpt2'"),
        (lambda: dataclasses.replace(LLAVA, image_token_id=97), r"image_token_id: 97 is outside"),
        (lambda: dataclasses.replace(LLAVA, text=None), r"^config\.model\.text: arch 'llava'"),
        (lambda: dataclasses.replace(TEXT, num_kv_heads=3), r"text\.num_kv_heads: num_heads 4"),
        (lambda: dataclasses.replace(VISION, hidden_act="tanh"), r"vision\.hidden_act: 'tanh'"),
        (lambda: ProjectorConfig(type="conv"), r"^config\.model\.projector\.type: 'conv'"),
        (lambda: ProjectorConfig(video="pooled"), r"projector\.video: the 'mlp' projector"),
        (lambda: LoraConfig(targets=("qkv",)), r"^config\.model\.lora\.targets: 'qkv'"),
        # Across parts: a pool that does not divide the vision tower's 4x4 patch grid.
        (
            lambda: dataclasses.replace(
                LLAVA, projector=ProjectorConfig(type="multi_perspective", patch_pool=3)
            ),
            r"^config\.model\.projector\.patch_pool: 3 does not divide the 4x4 grid",
        ),
    ],
)
def test_direct_construction_and_replace_are_checked(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


def test_allowed_values_are_the_registries_keys():
    for policy in remat.REMAT_POLICIES:
        assert dataclasses.replace(LLAVA, remat=policy).remat == policy
    for act in ACTIVATIONS:
        assert dataclasses.replace(VISION, hidden_act=act).hidden_act == act
        assert ProjectorConfig(hidden_act=act).hidden_act == act
    for kind in PROJECTORS:
        ProjectorConfig(type=kind)
    assert ProjectorConfig().perspectives == tuple(PERSPECTIVE_MODULES)
    for name in PERSPECTIVE_MODULES:
        ProjectorConfig(type="multi_perspective", perspectives=(name,))
    assert set(BY_ARCH) == set(ARCHS)


def test_the_schema_names_exactly_what_the_implementations_register():
    """The schema holds names only (it imports no model code); each table of implementations is
    keyed by exactly those names (the perspectives in the schema's order)."""
    from emollm_jax.config import model as schema
    from emollm_jax.models.decoder import DecoderLM

    assert set(schema.ARCHS) == set(ARCHS)
    assert schema.TEXT_FAMILIES == tuple(a for a, cls in ARCHS.items() if cls is DecoderLM)
    assert set(schema.ACTIVATIONS) == set(ACTIVATIONS)
    assert set(schema.PROJECTORS) == set(PROJECTORS)
    assert schema.PERSPECTIVES == tuple(PERSPECTIVE_MODULES)
    assert set(schema.REMAT_POLICIES) == set(remat.REMAT_POLICIES)


@pytest.mark.parametrize("arch", sorted(BY_ARCH))
def test_every_model_carries_its_config(arch):
    cfg = BY_ARCH[arch]
    model = abstract_model(cfg)
    assert type(model) is ARCHS[arch]
    assert model.config == cfg
