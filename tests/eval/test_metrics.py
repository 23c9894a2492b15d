"""Metric values on a hand-made prediction set; every expected number is worked out by hand."""

import pytest

from emollm_jax.eval.metrics import UNPARSED, Metrics, compute_metrics
from emollm_jax.tasks import EMOTIONS, TASK_LABELS, TASKS

INTENT = TASK_LABELS["intent"]


def row(i, task, gold, parsed):
    return {"id": i, "task": task, "gold": gold, "parsed": parsed, "output": "..."}


ROWS = [
    row(1, "emotion_closed", "anger", "anger"),
    row(2, "emotion_closed", "anger", "fear"),
    row(3, "emotion_closed", "fear", "fear"),
    row(4, "emotion_closed", "joy", None),
    row(5, "hate", "yes", "yes"),
    row(6, "hate", "no", "yes"),
    row(7, "hate", "no", "no"),
    row(8, "intent", INTENT[0], INTENT[0]),
    row(9, "intent", INTENT[1], None),
]


@pytest.fixture(scope="module")
def metrics():
    return compute_metrics(ROWS)


def test_accuracy_and_unparsed(metrics):
    closed, hate, intent = (metrics.tasks[t] for t in ("emotion_closed", "hate", "intent"))
    assert (closed.n, closed.correct, closed.unparsed, closed.accuracy) == (4, 2, 1, 0.5)
    assert (hate.n, hate.correct, hate.unparsed) == (3, 2, 0)
    assert hate.accuracy == pytest.approx(2 / 3)
    assert (intent.n, intent.correct, intent.unparsed, intent.accuracy) == (2, 1, 1, 0.5)
    assert (metrics.n, metrics.unparsed) == (9, 2)


def test_mean_is_over_the_sub_tasks_present_and_names_the_missing(metrics):
    assert list(metrics.tasks) == ["emotion_closed", "intent", "hate"]  # TASKS order
    assert metrics.missing == ("emotion_open", "humor", "sarcasm")
    assert not metrics.complete
    # plain mean of 0.5, 0.5 and 2/3 (test_mean_is_unweighted_by_rows separates it from pooling)
    assert metrics.mean_accuracy == pytest.approx((0.5 + 0.5 + 2 / 3) / 3)


def test_mean_is_unweighted_by_rows():
    rows = [row(i, "hate", "yes", "yes") for i in range(9)] + [row(9, "humor", "yes", "no")]
    m = compute_metrics(rows)
    assert m.mean_accuracy == pytest.approx(0.5)  # (1.0 + 0.0) / 2, not 9 / 10


def test_macro_f1(metrics):
    # emotion_closed: anger 2/3 (tp 1, fn 1), fear 2/3 (tp 1, fp 1), joy 0 (fn 1, unparsed);
    # the four labels that never occur are left out.
    assert metrics.tasks["emotion_closed"].macro_f1 == pytest.approx((2 / 3 + 2 / 3 + 0) / 3)
    # hate: yes 2/3 (tp 1, fp 1), no 2/3 (tp 1, fn 1)
    assert metrics.tasks["hate"].macro_f1 == pytest.approx(2 / 3)
    # intent: first label 1.0, second 0.0 (its only row is unparsed, a false negative)
    assert metrics.tasks["intent"].macro_f1 == pytest.approx(0.5)


def test_confusion_matrix(metrics):
    closed = metrics.tasks["emotion_closed"]
    assert closed.labels == EMOTIONS
    assert closed.columns == (*EMOTIONS, UNPARSED)
    expected = [[0] * (len(EMOTIONS) + 1) for _ in EMOTIONS]
    anger, fear, joy = (EMOTIONS.index(e) for e in ("anger", "fear", "joy"))
    expected[anger][anger] = 1
    expected[anger][fear] = 1
    expected[fear][fear] = 1
    expected[joy][-1] = 1
    assert [list(r) for r in closed.confusion] == expected
    hate = metrics.tasks["hate"]
    yes, no = hate.labels.index("yes"), hate.labels.index("no")
    assert hate.confusion[yes][yes] == 1 and hate.confusion[no][yes] == 1
    assert hate.confusion[no][no] == 1 and sum(map(sum, hate.confusion)) == 3


def test_labels_outside_the_default_set_get_their_own_rows_and_columns():
    rows = [
        row(1, "emotion_closed", "contempt", "contempt"),
        row(2, "emotion_closed", "joy", "awe"),
    ]
    m = compute_metrics(rows).tasks["emotion_closed"]
    assert m.labels == (*EMOTIONS, "awe", "contempt")
    assert m.accuracy == 0.5
    assert m.confusion[m.labels.index("joy")][m.labels.index("awe")] == 1


def test_all_six_present_is_complete():
    rows = [
        row(i, task, TASK_LABELS[task][0], TASK_LABELS[task][0]) for i, task in enumerate(TASKS)
    ]
    m = compute_metrics(rows)
    assert m.complete and m.missing == () and m.mean_accuracy == 1.0


def test_no_rows():
    m = compute_metrics([])
    assert m.mean_accuracy is None and m.missing == TASKS and m.tasks == {}


def test_bad_rows_are_errors():
    with pytest.raises(ValueError, match="twice"):
        compute_metrics([row(1, "hate", "yes", "yes"), row("1", "hate", "no", "no")])
    with pytest.raises(ValueError, match="unknown task"):
        compute_metrics([row(1, "valence", "yes", "yes")])
    # the same id in two sub-tasks is two records
    assert compute_metrics([row(1, "hate", "yes", "yes"), row(1, "humor", "no", "no")]).n == 2


def test_dict_round_trip(metrics):
    assert Metrics.from_dict(metrics.to_dict()) == metrics
