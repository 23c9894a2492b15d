"""EmoBench's six scored sub-tasks and their default label sets, defined once.

EmoBench (Yang et al., 2024) scores five emotional tasks as six sub-tasks: multimodal emotion
recognition as close-set (the instruction lists the options) and open-set (the model names the
emotion freely), intent understanding, and the yes/no application tasks hate, humor and sarcasm
detection. Accuracy per sub-task; the overall score is the plain mean over the six.

A record's own ``options`` override the default label set of its task.
"""

from __future__ import annotations

EMOTIONS = ("anger", "disgust", "fear", "joy", "sadness", "surprise", "neutral")
# One word each (the answer is the word); the mini EmoBench draws one badge per intent.
INTENTS = ("greet", "comfort", "warn", "celebrate", "complain", "request")
YES_NO = ("yes", "no")

TASK_LABELS: dict[str, tuple[str, ...]] = {
    "emotion_closed": EMOTIONS,
    "emotion_open": EMOTIONS,
    "intent": INTENTS,
    "hate": YES_NO,
    "humor": YES_NO,
    "sarcasm": YES_NO,
}
TASKS: tuple[str, ...] = tuple(TASK_LABELS)
YES_NO_TASKS: tuple[str, ...] = ("hate", "humor", "sarcasm")


def labels_for(task: str, options: list[str] | tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The label set a record is scored against: its own options, else its task's defaults."""
    if task not in TASK_LABELS:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    if options:
        return tuple(options)
    return TASK_LABELS[task]
