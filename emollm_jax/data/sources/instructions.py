"""Instructions for source rows: varied phrasings per task, drawn by seed, so builds repeat.

Our choices (the paper publishes no prompts): a row's text (the meme's text, or the spoken
utterance with its speaker) is quoted before the question; close-set questions list the
options (the source's whole label set, in an order drawn per record); open-set questions do
not; yes/no questions say "yes or no". ``rng_for(seed, record_id)`` seeds from the record's id,
not from its position, so a record's instruction does not change when other rows are added or
skipped.
"""

from __future__ import annotations

import random

from emollm_jax.data.sources.rows import SourceRow

QUESTIONS: dict[str, tuple[str, ...]] = {
    "emotion_closed": (
        "Which emotion does this {medium} convey? Options: {options}.",
        "Pick the emotion shown in this {medium} from: {options}.",
        "What is the emotion here? Choose one of: {options}.",
    ),
    "emotion_open": (
        "Which emotion does this {medium} convey? Answer with one word.",
        "What emotion is shown in this {medium}?",
        "Name the emotion in this {medium}.",
    ),
    "intent": (
        "What does the speaker intend? Options: {options}.",
        "What is the intent of the speaker in this {medium}? Choose from: {options}.",
    ),
    "hate": (
        "Is this meme hateful? Answer yes or no.",
        "Is this {medium} with its text hateful? yes or no?",
    ),
    "humor": (
        "Is this meme funny? Answer yes or no.",
        "Is this {medium} with its text funny? yes or no?",
    ),
    "sarcasm": (
        "Is this sarcastic? Answer yes or no.",
        "Is the {medium} with its text sarcastic? yes or no?",
    ),
}
QUOTES = ('The text says: "{text}"', 'Text: "{text}"')
SPOKEN = ('{speaker} says: "{text}"', 'In this clip {speaker} says: "{text}"')
MEDIUM = {"image": "image", "video": "clip"}


def rng_for(seed: int, record_id: str) -> random.Random:
    """A generator for one record (Python seeds a str through SHA-512: stable across runs)."""
    return random.Random(f"{seed}/{record_id}")


def instruction(rng: random.Random, task: str, row: SourceRow, options: list[str]) -> str:
    """The human turn's text (without the media placeholder) for ``row`` as a ``task`` record."""
    question = rng.choice(QUESTIONS[task]).format(
        medium=MEDIUM[row.media_type], options=", ".join(options)
    )
    text = " ".join((row.text or "").split())
    if not text:
        return question
    template = rng.choice(SPOKEN if row.speaker else QUOTES)
    return template.format(text=text, speaker=row.speaker) + " " + question
