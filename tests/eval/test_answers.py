"""Hand-written parser cases, tricky ones included; the expected labels are decided by hand."""

import pytest

from emollm_jax.eval import synonyms
from emollm_jax.eval.answers import normalize, parse_answer
from emollm_jax.tasks import EMOTIONS, TASK_LABELS, YES_NO_TASKS, labels_for

CLOSED = [
    ("anger", "anger"),
    ("ANGER.", "anger"),
    ("  Fear!!  ", "fear"),
    ("sadness", "sadness"),
    ("The person in the image looks like they feel surprise at the sudden noise.", "surprise"),
    ("Joy, clearly.", "joy"),
    ("joy/sadness", "joy"),  # first mention wins
    ("Not anger but disgust.", "disgust"),  # the negated mention is skipped
    ("It is neither anger nor fear; it is sadness.", "sadness"),
    ("The woman is angry.", None),  # close-set reads labels only, no synonyms
    ("", None),
    ("   \n ", None),
    ("I cannot tell.", None),
    ("fearful", None),  # whole words only
    ("She smiles broadly.\nAnswer: joy", "joy"),
    ("At first sight anger, but the smile says otherwise.\nAnswer: joy", "joy"),  # Answer: wins
    ("**Answer:** Disgust", "disgust"),
    ("Final answer: neutral", "neutral"),
    ("Answer:\n\nsurprise", "surprise"),  # label on the line after the marker
    ("Answer: fear\nreasoning: no wait\nAnswer: sadness", "sadness"),  # the last marker
    ("She frowns, which could mean anger.\nAnswer: I am not sure", None),  # no fallback
    ("Is it anger or joy? Joy.", "joy"),  # a question's mentions are only a last resort
    ("Joy?", "joy"),
]


@pytest.mark.parametrize("output, expected", CLOSED)
def test_close_set(output, expected):
    assert parse_answer(output, "emotion_closed") == expected


OPEN = [
    ("not happy", None),  # negated, and nothing else is named
    ("She is not happy.", None),
    ("She doesn't look happy at all.", None),
    ("He is not happy, he is furious.", "anger"),
    ("not happy but sad", "sadness"),
    ("joy/happiness", "joy"),
    ("happiness/sadness", "joy"),
    ("HAPPY", "joy"),
    ("unhappy", "sadness"),  # never read as "happy"
    ("The man seems scared of the dog.", "fear"),
    ("Afraid.", "fear"),
    ("The image shows a crowded street at night; the man in front is shocked.", "surprise"),
    ("grossed-out", "disgust"),
    ("There is no emotion in her face.", "neutral"),
    ("calm", "neutral"),
    ("No doubt she is delighted.", "joy"),  # "no doubt" is not a negation
    ("She is mad. Answer: fear", "fear"),
    ("wistful", None),  # not in the table
    ("", None),
]


@pytest.mark.parametrize("output, expected", OPEN)
def test_open_set(output, expected):
    assert parse_answer(output, "emotion_open") == expected


YES_NO = [
    ("Yes", "sarcasm", "yes"),
    ("no.", "sarcasm", "no"),
    ("YES, the caption mocks the sad face.", "sarcasm", "yes"),
    ("No, it is not sarcastic.", "sarcasm", "no"),
    ("The caption is sarcastic.", "sarcasm", "yes"),
    ("I don't think it's sarcastic.", "sarcasm", "no"),  # negation inverts for yes/no
    ("Is it sarcastic? No.", "sarcasm", "no"),  # the echoed question does not answer
    ("That is true.", "hate", "yes"),
    ("False", "hate", "no"),
    ("not true", "hate", "no"),
    ("This meme is hateful.", "hate", "yes"),
    ("It contains hate speech.", "hate", "yes"),
    ("The joke is funny.", "humor", "yes"),
    ("It isn't funny.", "humor", "no"),
    ("No doubt it is funny.", "humor", "yes"),  # "no doubt" is not an answer
    ("The picture shows two people.\nAnswer: No", "humor", "no"),
    ("The picture shows two people.", "humor", None),
    ("", "hate", None),
]


@pytest.mark.parametrize("output, task, expected", YES_NO)
def test_yes_no(output, task, expected):
    assert parse_answer(output, task) == expected


def test_yes_no_tasks_share_the_yes_no_labels():
    for task in YES_NO_TASKS:
        assert parse_answer("yes", task) in TASK_LABELS[task]
        assert parse_answer("yes", task) != parse_answer("no", task)


@pytest.mark.parametrize("label", TASK_LABELS["intent"])
def test_every_intent_label_parses_in_its_variants(label):
    spaced = label.replace("_", " ")
    for written in (label, label.upper(), spaced, spaced.replace(" ", "-"), f"'{spaced}'."):
        assert parse_answer(f"The speaker wants to {written} here", "intent") == label


def test_own_options_override_and_keep_their_spelling():
    options = ["Ask_Help", "say thanks", "threaten"]
    assert labels_for("intent", options) == tuple(options)
    assert parse_answer("they ask-help", "intent", options) == "Ask_Help"
    assert parse_answer("They SAY THANKS.", "intent", options) == "say thanks"
    assert parse_answer("say, thanks", "intent", options) is None  # a phrase is contiguous
    assert parse_answer("threaten", "emotion_closed", options) == "threaten"
    assert parse_answer("Yes", "sarcasm", ["Yes", "No"]) == "Yes"


def test_longest_label_wins_at_the_same_position():
    options = ["happy", "happy surprise"]
    assert parse_answer("happy surprise", "emotion_closed", options) == "happy surprise"
    assert parse_answer("happy, surprise", "emotion_closed", options) == "happy"


def test_unknown_task_is_an_error():
    with pytest.raises(ValueError, match="unknown task"):
        parse_answer("yes", "valence")


def test_normal_form():
    assert normalize("Isn't it ASK_help?") == ["is", "not", "it", "ask", "help", "?"]


def test_synonym_table_is_well_formed():
    assert set(synonyms.EMOTION_SYNONYMS) == set(EMOTIONS)
    owner = {}
    for label, words in synonyms.EMOTION_SYNONYMS.items():
        assert label in words
        for word in words:
            assert owner.setdefault(" ".join(normalize(word)), label) == label, word
            assert parse_answer(f"She feels {word}.", "emotion_open") == label, word
    assert not set(synonyms.YES_WORDS) & set(synonyms.NO_WORDS)
    assert set(synonyms.TASK_PREDICATES) == set(YES_NO_TASKS)
