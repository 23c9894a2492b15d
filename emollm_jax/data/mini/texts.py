"""The words of the mini EmoBench: captions, prompts and the phrases its rationales are built
from, shared by every version's labelling rules (``make_mini_emobench.py``,
``scene_rules.py``)."""

from __future__ import annotations

NEGATIVE_FACES = ("anger", "disgust", "fear", "sadness")

POSITIVE_CAPTIONS = (
    "Best day ever!",
    "I love this so much.",
    "What a great surprise.",
    "Life is wonderful today.",
    "This is the happiest moment.",
    "Everything went perfectly.",
)
NEGATIVE_CAPTIONS = (
    "This is the worst day.",
    "I hate everything about this.",
    "What a terrible mess.",
    "Nothing ever goes right.",
    "This is so awful.",
    "I am having a horrible time.",
)
HUMOR_CAPTIONS = (
    "Me on a Monday morning.",
    "When the wifi comes back.",
    "My face at the meeting.",
    "Waiting for the weekend.",
    "When someone eats my lunch.",
    "Me after one more coffee.",
)
GROUPS = ("blorps", "zingles", "people from Varn", "the Quell folk", "those Mibbers")
THINGS = ("mondays", "traffic jams", "soggy fries", "cold coffee", "rainy weekends")
DEMEANING = ("are vermin", "are worthless filth", "should vanish forever", "are a plague")
NEUTRAL = ("are my neighbours", "love to dance", "live near the river", "cook great food")

MOUTH_WORDS = {
    "anger": "the teeth are clenched",
    "disgust": "the mouth is twisted to one side and the nose wrinkles",
    "fear": "the mouth trembles in a wavy line",
    "joy": "the mouth is open in a wide smile",
    "sadness": "the mouth curves down",
    "surprise": "the mouth is a round open O",
    "neutral": "the mouth is a straight line",
}
BROW_WORDS = {
    "anger": "the brows are pulled down in a V",
    "disgust": "one brow is raised",
    "fear": "the brows are raised and pulled together over wide eyes",
    "joy": "the brows are relaxed arches over smiling eyes",
    "sadness": "the inner brows are raised",
    "surprise": "the brows are raised high over round eyes",
    "neutral": "the brows are level",
}
BADGE_WORDS = {
    "greet": "a waving hand",
    "comfort": "a heart",
    "warn": "a warning triangle",
    "celebrate": "a star",
    "complain": "a lightning bolt",
    "request": "a question mark",
}

CLOSED_PROMPTS = (
    "Which emotion does the person show? Options: {options}.",
    "Pick the emotion on this face from: {options}.",
    "What is the person feeling? Choose one of: {options}.",
)
OPEN_PROMPTS = (
    "Which emotion does the person show? Answer with one word.",
    "What is the person feeling?",
    "Name the emotion on this face.",
)
VIDEO_CLOSED_PROMPTS = (
    "Which emotion does the person show at the end of the video? Options: {options}.",
    "Pick the final emotion in this clip from: {options}.",
)
VIDEO_OPEN_PROMPTS = (
    "Which emotion does the person show at the end of the video? Answer with one word.",
    "Name the final emotion in this clip.",
)
INTENT_PROMPTS = (
    "What does the person intend? Options: {options}.",
    "What is the intent of this picture? Choose from: {options}.",
)
HATE_PROMPTS = (
    'The caption says: "{caption}" Is this meme hateful? Answer yes or no.',
    'Caption: "{caption}" Is this hateful? yes or no?',
)
HUMOR_PROMPTS = (
    'The caption says: "{caption}" Is this meme funny? Answer yes or no.',
    'Caption: "{caption}" Is this picture funny? yes or no?',
)
SARCASM_PROMPTS = (
    'The caption says: "{caption}" Is this meme sarcastic? Answer yes or no.',
    'Caption: "{caption}" Is the caption sarcastic? yes or no?',
)


def pick(rng: np.random.Generator, items):
    return items[int(rng.integers(len(items)))]


def sentence_case(text: str) -> str:
    return text[:1].upper() + text[1:]
