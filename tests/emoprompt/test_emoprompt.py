"""EmoPrompt: guiding prompts and rationale targets, checked literally, and the prompt hook."""

import copy
import json

import pytest

from emollm_jax.data import records
from emollm_jax.data.pipeline import make_encoder
from emollm_jax.emoprompt import hook_from_config, rationales, templates
from emollm_jax.emoprompt.hook import EmoPromptHook, make_prompt_hook
from emollm_jax.errors import ConfigError
from emollm_jax.tasks import labels_for
from tests.configs import load_config

FACE = (
    "Weigh the facial expression (mouth, brows and eyes) first, then posture and gestures, the "
    "scene and its colours, and any caption or dialogue context."
)
REASON = "First explain in one or two sentences what these cues show, then write a last line "

CLOSED = {
    "id": "r1",
    "task": "emotion_closed",
    "media": [{"type": "image", "path": "a.png"}],
    "conversations": [
        {"from": "human", "value": "<image>\nWhich emotion? Options: joy, fear."},
        {"from": "gpt", "value": "fear"},
    ],
    "answer": "fear",
    "options": ["joy", "fear"],
    "rationale": "The brows are raised and pulled together over wide eyes.",
}


def _hook(mode="train", **flags):
    return EmoPromptHook(
        guiding_prompts=flags.get("guiding_prompts", True),
        rationale_targets=flags.get("rationale_targets", True),
        mode=mode,
        rationales=flags.get("rationales"),
    )


def _turns(record):
    return [t["value"] for t in record["conversations"]]


def test_guiding_prompts_name_cues_and_answer_format():
    assert templates.guiding_prompt(
        "emotion_closed", ["joy", "fear"], has_video=False, reason=False
    ) == (f"{FACE} Answer with exactly one of: joy, fear.")
    assert templates.guiding_prompt("emotion_open", [], has_video=True, reason=False) == (
        f"{FACE} Follow how the expression changes across the frames. "
        "Answer with one word naming the emotion."
    )
    assert templates.guiding_prompt("sarcasm", ["yes", "no"], has_video=False, reason=True) == (
        "Compare the sentiment of the caption with the facial expression and the scene: "
        f"positive words over a negative face signal sarcasm. {REASON}'Answer: <label>' where <label> is exactly one of: "
        "yes, no."
    )
    assert templates.guiding_prompt("emotion_open", [], has_video=False, reason=True) == (
        f"{FACE} {REASON}'Answer: <emotion>' naming the emotion in one word."
    )
    assert templates.teacher_prompt("hate", "yes", has_video=False) == (
        "Weigh the caption and any text on the image first: whom it targets and what it says "
        "about them; then whether the picture changes that meaning. The correct answer is yes. "
        "Explain in one or two sentences which of these cues show that, then write a last line "
        "'Answer: yes'."
    )


def test_rationale_target_text():
    assert templates.rationale_target("  The mouth curves down. ", "sadness") == (
        "The mouth curves down.\nAnswer: sadness"
    )


def test_rationale_after_the_answer():
    assert templates.rationale_target(" The mouth curves down. ", "sadness", "after_answer") == (
        "Answer: sadness\nThe mouth curves down."
    )
    hook = EmoPromptHook(
        guiding_prompts=True,
        rationale_targets=True,
        mode="train",
        rationale_position="after_answer",
    )
    out = hook(copy.deepcopy(CLOSED))
    assert _turns(out)[1] == f"Answer: fear\n{CLOSED['rationale']}"
    assert _turns(out)[0].endswith(
        f"{FACE} Write a first line 'Answer: <label>' where <label> is exactly one of: joy, fear, "
        "then explain in one or two sentences what these cues show."
    )
    open_prompt = templates.guiding_prompt(
        "emotion_open", [], has_video=False, reason=True, position="after_answer"
    )
    assert open_prompt.endswith(
        "'Answer: <emotion>' naming the emotion in one word, then explain in one or two "
        "sentences what these cues show."
    )
    with pytest.raises(ValueError, match="rationale position 'middle'"):
        templates.rationale_target("r", "joy", "middle")
    c = load_config("emollm_tiny", "full")
    c.emoprompt.rationale_position = "middle"
    with pytest.raises(ConfigError, match="config.emoprompt.rationale_position"):
        make_prompt_hook(c, "train")


def test_train_record_with_rationale_gets_the_rationale_target():
    out = _hook()(copy.deepcopy(CLOSED))
    assert _turns(out) == [
        "<image>\nWhich emotion? Options: joy, fear.\n"
        f"{FACE} {REASON}'Answer: <label>' where <label> is exactly one of: joy, fear.",
        "The brows are raised and pulled together over wide eyes.\nAnswer: fear",
    ]


def test_train_record_without_rationale_keeps_the_label_and_plain_format():
    record = {**copy.deepcopy(CLOSED), "rationale": None}
    assert _turns(_hook()(record)) == [
        f"<image>\nWhich emotion? Options: joy, fear.\n{FACE} Answer with exactly one of: joy, "
        "fear.",
        "fear",
    ]
    targets_only = _hook(guiding_prompts=False)(copy.deepcopy(CLOSED))
    assert _turns(targets_only) == [
        "<image>\nWhich emotion? Options: joy, fear.",
        "The brows are raised and pulled together over wide eyes.\nAnswer: fear",
    ]


def test_eval_prompts_ask_for_the_trained_format():
    record = {**copy.deepcopy(CLOSED), "rationale": None, "task": "intent", "options": None}
    record["answer"] = record["conversations"][1]["value"] = "warn"
    out = _hook("eval")(record)
    assert _turns(out) == [
        "<image>\nWhich emotion? Options: joy, fear.\nWeigh symbols and text on the image "
        f"first, then gestures, the facial expression and the scene. {REASON}'Answer: <label>' "
        "where <label> is exactly one of: greet, comfort, warn, celebrate, complain, request.",
        "warn",
    ]
    plain = _hook("eval", rationale_targets=False)(copy.deepcopy(CLOSED))
    assert _turns(plain)[0].endswith(f"{FACE} Answer with exactly one of: joy, fear.")


def test_records_without_a_task_pass_unchanged():
    record = {**copy.deepcopy(CLOSED), "task": None}
    assert _hook()(copy.deepcopy(record)) == record


def test_rationales_file_replaces_the_records_own(tmp_path):
    path = tmp_path / "r.jsonl"
    row = {"id": "r1", "task": "emotion_closed", "answer": "fear", "rationale": "Wide eyes."}
    path.write_text(json.dumps(row) + "\n")
    table = rationales.read(path)
    assert _turns(_hook(rationales=table)(copy.deepcopy(CLOSED)))[1] == "Wide eyes.\nAnswer: fear"
    other = {**copy.deepcopy(CLOSED), "id": "r2"}
    assert _turns(_hook(rationales=table)(other))[1] == "fear"  # not in the file: no rationale
    c = load_config("emollm_tiny", "full")
    c.emoprompt.rationales_file = str(path)
    assert make_prompt_hook(c, "train").rationales == {"r1": "Wide eyes."}


def test_config_switches_and_checks():
    assert hook_from_config(load_config("emollm_tiny", "mp")) is None
    assert make_prompt_hook(load_config("emollm_tiny", "baseline"), "eval") is None
    hook = hook_from_config(load_config("emollm_tiny", "emoprompt"))
    assert (hook.guiding_prompts, hook.rationale_targets, hook.mode) == (True, True, "train")
    c = load_config("emollm_tiny", "full")
    c.emoprompt.rationales_file = "/no/such/file.jsonl"
    with pytest.raises(ConfigError, match="^config.emoprompt.rationales_file: /no/such"):
        make_prompt_hook(c, "train")
    c = load_config("emollm_tiny", "full").to_dict()
    c["emoprompt"]["guiding_prompts"] = "yes"
    with pytest.raises(ConfigError, match="^config.emoprompt.guiding_prompts: expected a bool"):
        make_prompt_hook(c, "train")


@pytest.mark.parametrize(
    "text, kept, reason",
    [
        ("The brows are raised.\nAnswer: fear", "The brows are raised.", None),
        (
            "Wide eyes.\nTrembling mouth.\n\n  answer:  'Fear'. ",
            "Wide eyes.\nTrembling mouth.",
            None,
        ),
        ("Wide eyes.\nAnswer: joy", None, "wrong_label"),
        ("Wide eyes, so fear.", None, "no_answer_line"),
        ("Answer: fear\nbecause of the eyes", None, "no_answer_line"),
        ("Answer: fear", None, "empty_rationale"),
        ("", None, "no_answer_line"),
    ],
)
def test_teacher_rationales_must_end_in_the_gold_label(text, kept, reason):
    assert rationales.check(text, "fear") == (kept, reason)


def test_pipeline_targets_are_the_rationale_then_the_answer(mini_dir, tokenizer):
    c = load_config("emollm_tiny", "full")
    c.data.dir = str(mini_dir)
    record = records.read_split(mini_dir, "train", max_pixels=None)[0][0]
    encoder = make_encoder(c, "train", tokenizer=tokenizer, prompt_hook=hook_from_config(c))
    labels = encoder(record)["labels"]
    target = tokenizer.decode(labels[labels >= 0])
    assert target == f" {record['rationale']}\nAnswer: {record['answer']}</s>"
    eval_encoder = make_encoder(
        c, "eval", tokenizer=tokenizer, prompt_hook=make_prompt_hook(c, "eval")
    )
    prompt = eval_encoder(record)["meta"]["prompt"]
    guide = templates.guiding_prompt(
        record["task"],
        labels_for(record["task"], record["options"]),
        has_video=record["media"][0]["type"] == "video",
        reason=True,
    )
    assert prompt.endswith(f"{guide} ASSISTANT:")
