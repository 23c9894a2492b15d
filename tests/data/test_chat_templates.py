"""Chat templates: exact strings, target segments, prompt-only renders."""

import pytest

from emollm_jax.data import chat_templates as ct

CONV = [
    {"from": "human", "value": "<image>\nHow does she feel?"},
    {"from": "gpt", "value": "joy"},
    {"from": "human", "value": "Sure?"},
    {"from": "gpt", "value": "yes"},
]


def test_vicuna_v1_matches_llava_v1():
    r = ct.render(CONV, "vicuna_v1")
    assert r.bos
    assert r.text == (
        ct.VICUNA_SYSTEM + " USER: <image>\nHow does she feel? ASSISTANT: joy</s>"
        "USER: Sure? ASSISTANT: yes</s>"
    )
    assert [t for t, is_target in r.segments if is_target] == [" joy</s>", " yes</s>"]
    prompt = ct.render(CONV, "vicuna_v1", prompt_only=True)
    assert prompt.text == r.text[: r.text.rindex(" yes</s>")]
    assert prompt.text.endswith("USER: Sure? ASSISTANT:")
    assert not any(is_target for _, is_target in prompt.segments[-1:])


def test_chatml_matches_qwen():
    r = ct.render(CONV[:2], "chatml")
    assert not r.bos
    assert r.text == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n<image>\nHow does she feel?<|im_end|>\n"
        "<|im_start|>assistant\njoy<|im_end|>\n"
    )
    assert [t for t, is_target in r.segments if is_target] == ["joy<|im_end|>"]
    prompt = ct.render(CONV[:2], "chatml", prompt_only=True)
    assert prompt.text == r.text[: r.text.index("joy")]


def test_tokenizer_template_agrees_with_chatml_for_our_tokenizer(tokenizer):
    for prompt_only in (False, True):
        own = ct.render(CONV, "tokenizer", tokenizer, prompt_only=prompt_only)
        ours = ct.render(CONV, "chatml", tokenizer, prompt_only=prompt_only)
        assert own.text == ours.text
        assert [t for t, x in own.segments if x] == [t for t, x in ours.segments if x]


def test_system_turn_replaces_the_default():
    conv = [{"from": "system", "value": "Be brief."}, *CONV[:2]]
    assert ct.render(conv, "vicuna_v1").text.startswith("Be brief. USER:")
    assert ct.render(conv, "chatml").text.startswith("<|im_start|>system\nBe brief.<|im_end|>")


def test_unknown_template_names_the_choices():
    with pytest.raises(ValueError, match="vicuna_v1"):
        ct.render(CONV, "llama9")
