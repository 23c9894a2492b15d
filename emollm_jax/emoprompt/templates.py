"""Every text EmoPrompt adds, in one place: guiding prompts, answer formats, rationale targets and
the teacher's instruction.

The paper says EmoPrompt "guides MLLMs to reason about emotions in the correct direction" and
publishes no prompt; these texts are ours. A guiding prompt names the cues to weigh for the
record's task (facial expression, posture, scene and colour, on-image text, caption or dialogue
context) and the exact answer format: the label options for close-set tasks, one emotion word
for open-set. It is appended to the instruction of the human turn, on its own line.
"""

from __future__ import annotations

from collections.abc import Sequence

_FACE = (
    "Weigh the facial expression (mouth, brows and eyes) first, then posture and gestures, "
    "the scene and its colours, and any caption or dialogue context."
)

# The cues to weigh, per EmoBench task (emollm_jax.tasks.TASKS).
TASK_CUES: dict[str, str] = {
    "emotion_closed": _FACE,
    "emotion_open": _FACE,
    "intent": (
        "Weigh symbols and text on the image first, then gestures, the facial expression and "
        "the scene."
    ),
    "hate": (
        "Weigh the caption and any text on the image first: whom it targets and what it says "
        "about them; then whether the picture changes that meaning."
    ),
    "humor": (
        "Weigh visual gags and any incongruity between the picture and the caption, then the "
        "facial expression."
    ),
    "sarcasm": (
        "Compare the sentiment of the caption with the facial expression and the scene: "
        "positive words over a negative face signal sarcasm."
    ),
}
# Added after the cues when the record's media include a video.
VIDEO_CUE = "Follow how the expression changes across the frames."

# Answer formats. Close-set: {options} is the record's label set joined by ", ".
ANSWER_CLOSED = "Answer with exactly one of: {options}."
ANSWER_OPEN = "Answer with one word naming the emotion."
REASON_CLOSED = (
    "First explain in one or two sentences what these cues show, then write a last line "
    "'Answer: <label>' where <label> is exactly one of: {options}."
)
REASON_OPEN = (
    "First explain in one or two sentences what these cues show, then write a last line "
    "'Answer: <emotion>' naming the emotion in one word."
)

# Answer formats with the rationale after the answer (config.emoprompt.rationale_position).
REASON_CLOSED_AFTER = (
    "Write a first line 'Answer: <label>' where <label> is exactly one of: {options}, then "
    "explain in one or two sentences what these cues show."
)
REASON_OPEN_AFTER = (
    "Write a first line 'Answer: <emotion>' naming the emotion in one word, then explain in one "
    "or two sentences what these cues show."
)

# The training target when rationale targets are on and the record has a rationale, by
# config.emoprompt.rationale_position: reasoning then verdict (the default), or the verdict
# first, so that the answer tokens see only the prompt (and can be scored directly).
RATIONALE_TARGET = "{rationale}\nAnswer: {label}"
ANSWER_FIRST_TARGET = "Answer: {label}\n{rationale}"
RATIONALE_POSITIONS = ("before_answer", "after_answer")
# The last line a rationale must end with (the label compared case-insensitively).
ANSWER_LINE = "Answer: {label}"

# The teacher of `emollm annotate` is told the ground truth.
TEACHER = (
    "The correct answer is {label}. Explain in one or two sentences which of these cues show "
    "that, then write a last line 'Answer: {label}'."
)

OPEN_SET_TASKS = ("emotion_open",)


def cues(task: str, has_video: bool) -> str:
    text = TASK_CUES[task]
    return f"{text} {VIDEO_CUE}" if has_video else text


def check_position(position: str) -> None:
    if position not in RATIONALE_POSITIONS:
        raise ValueError(f"rationale position {position!r} not in {RATIONALE_POSITIONS}")


def answer_format(
    task: str, options: Sequence[str], reason: bool, position: str = "before_answer"
) -> str:
    check_position(position)
    first = position == "after_answer"
    if task in OPEN_SET_TASKS:
        if not reason:
            return ANSWER_OPEN
        return REASON_OPEN_AFTER if first else REASON_OPEN
    template = (REASON_CLOSED_AFTER if first else REASON_CLOSED) if reason else ANSWER_CLOSED
    return template.format(options=", ".join(options))


def guiding_prompt(
    task: str,
    options: Sequence[str],
    *,
    has_video: bool,
    reason: bool,
    position: str = "before_answer",
) -> str:
    """The line appended to the instruction: cues, then the answer format."""
    return f"{cues(task, has_video)} {answer_format(task, options, reason, position)}"


def teacher_prompt(task: str, label: str, *, has_video: bool) -> str:
    """The line appended to the instruction for the teacher, who is told the answer."""
    return f"{cues(task, has_video)} {TEACHER.format(label=label)}"


def rationale_target(rationale: str, label: str, position: str = "before_answer") -> str:
    check_position(position)
    template = ANSWER_FIRST_TARGET if position == "after_answer" else RATIONALE_TARGET
    return template.format(rationale=rationale.strip(), label=label)
