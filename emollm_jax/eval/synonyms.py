"""The words our answer parser accepts for each label: open-set emotions, yes/no, negation.

EmoBench scores open-set emotion recognition against a fixed emotion label set although the
model names the emotion in its own words, and scores hate, humor and sarcasm as yes/no. The
paper does not publish how free text is mapped onto labels; the tables below are our choice,
written by hand and kept deliberately small so that a reader can audit every mapping. Each entry
is a phrase in the parser's normal form (lower case, words separated by single spaces; hyphens,
underscores and other punctuation count as spaces), matched as whole words only, so that
"unhappy" never matches "happy".

Open-set emotion (``EMOTION_SYNONYMS``), our mapping choices:

- Adjective, noun and common inflected forms are listed explicitly; there is no stemming, so a
  mapping never happens that is not written here.
- Words that sit between two labels go to the one their usual meaning leans to: "upset",
  "disappointed" and "hurt" -> sadness; "annoyed" and "frustrated" -> anger; "anxious",
  "nervous", "worried" and "horrified" -> fear; "excited" and "amused" -> joy; "contempt" ->
  disgust (Ekman's contempt has no label of its own here); "calm", "relaxed", "indifferent" and
  phrases like "no emotion" -> neutral. Words with a common non-emotional sense ("content",
  "composed", "down") are left out rather than risk matching ordinary description.
- Phrases that contain a negation word ("no emotion", "no particular emotion") are entries in
  their own right: the parser matches the longest phrase first, so their "no" is not read as
  negating anything.

Yes/no (``YES_WORDS``, ``NO_WORDS``, ``TASK_PREDICATES``): a bare yes/no word, or the task's
own predicate ("sarcastic" for sarcasm, "funny" for humor, "hateful" for hate) stated as the
answer. A predicate counts as "yes"; a negated predicate ("not sarcastic", "isn't funny") counts
as "no". "correct"/"incorrect" are deliberately absent: "the correct answer is no" would
otherwise read as yes.

Negation (``NEGATION_CUES``, ``PSEUDO_NEGATIONS``, ``CLAUSE_BREAKS``, ``NEGATION_WINDOW``): a
mention is negated when one of the cue words stands at most ``NEGATION_WINDOW`` words before it
in the same clause (a clause ends at . , ; : ! ? or a line break, or at a contrast word such as
"but"). "n't" is rewritten to "not" before matching. Pseudo-negations such as "no doubt" and
"not only" are not cues. How a negated mention is used is the parser's business (see
``emollm_jax.eval.answers``).
"""

from __future__ import annotations

EMOTION_SYNONYMS: dict[str, tuple[str, ...]] = {
    "anger": (
        "anger",
        "angry",
        "angrily",
        "mad",
        "furious",
        "fury",
        "rage",
        "enraged",
        "irate",
        "livid",
        "outraged",
        "outrage",
        "irritated",
        "irritation",
        "annoyed",
        "annoyance",
        "frustrated",
        "frustration",
        "resentful",
        "resentment",
        "hostile",
        "hostility",
    ),
    "disgust": (
        "disgust",
        "disgusted",
        "disgusting",
        "revolted",
        "revulsion",
        "repulsed",
        "repulsion",
        "grossed out",
        "nauseated",
        "contempt",
        "contemptuous",
        "loathing",
    ),
    "fear": (
        "fear",
        "fearful",
        "afraid",
        "scared",
        "frightened",
        "terrified",
        "terror",
        "horrified",
        "horror",
        "panic",
        "panicked",
        "panicking",
        "dread",
        "anxious",
        "anxiety",
        "nervous",
        "nervousness",
        "worried",
        "worry",
        "alarmed",
    ),
    "joy": (
        "joy",
        "joyful",
        "joyous",
        "happy",
        "happiness",
        "happily",
        "glad",
        "delighted",
        "delight",
        "cheerful",
        "pleased",
        "elated",
        "ecstatic",
        "thrilled",
        "excited",
        "excitement",
        "amused",
        "amusement",
        "contentment",
        "jubilant",
        "merry",
    ),
    "sadness": (
        "sadness",
        "sad",
        "sadly",
        "unhappy",
        "unhappiness",
        "sorrow",
        "sorrowful",
        "grief",
        "grieving",
        "depressed",
        "depression",
        "melancholy",
        "melancholic",
        "miserable",
        "misery",
        "heartbroken",
        "gloomy",
        "despair",
        "hopeless",
        "lonely",
        "upset",
        "disappointed",
        "disappointment",
        "hurt",
    ),
    "surprise": (
        "surprise",
        "surprised",
        "surprising",
        "shocked",
        "shock",
        "astonished",
        "astonishment",
        "amazed",
        "amazement",
        "startled",
        "stunned",
        "astounded",
    ),
    "neutral": (
        "neutral",
        "neutrality",
        "calm",
        "calmness",
        "relaxed",
        "indifferent",
        "indifference",
        "impassive",
        "expressionless",
        "emotionless",
        "no emotion",
        "no emotions",
        "no particular emotion",
        "no strong emotion",
        "no clear emotion",
        "no obvious emotion",
    ),
}

YES_WORDS: tuple[str, ...] = ("yes", "yeah", "yep", "yup", "true", "affirmative")
NO_WORDS: tuple[str, ...] = ("no", "nope", "nah", "false")

# A task's own predicate: stated, it means "yes"; negated, it means "no".
TASK_PREDICATES: dict[str, tuple[str, ...]] = {
    "hate": ("hate", "hateful", "hate speech", "hatred", "offensive"),
    "humor": ("humor", "humour", "humorous", "funny", "hilarious", "joke", "amusing", "comedic"),
    "sarcasm": ("sarcasm", "sarcastic", "sarcastically", "ironic", "irony", "mocking"),
}

NEGATION_CUES: frozenset[str] = frozenset(
    {"not", "no", "never", "without", "neither", "nor", "non", "hardly", "barely", "lacks"}
)
# Two-word phrases that begin with a cue but do not negate what follows.
PSEUDO_NEGATIONS: frozenset[tuple[str, str]] = frozenset(
    {("no", "doubt"), ("not", "only"), ("not", "just"), ("without", "doubt"), ("no", "question")}
)
# Words that end a clause for negation scope, like punctuation does.
CLAUSE_BREAKS: frozenset[str] = frozenset(
    {"but", "however", "although", "though", "instead", "rather", "whereas"}
)
NEGATION_WINDOW = 4
