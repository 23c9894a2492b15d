"""Turning a model's free-text output into one of its task's labels, or None when it names none.

``parse_answer`` is the only door from generated text to a score. Our rules (the paper does not
publish its own):

1. The ``Answer:`` marker decides. EmoPrompt's rationale targets end with a line
   ``Answer: <label>``; when an output contains the word "answer" followed by a colon
   (case-insensitive, markdown emphasis allowed, so "**Final answer:**" counts too), the last
   such marker is the model's committed answer and only the rest of its line is parsed (if
   that is empty, the next non-empty line). A label mentioned only in the reasoning before it
   does not count: the reasoning names options the model weighed, so a marker followed by no
   label leaves the output unparsed rather than falling back to the reasoning.
2. Otherwise the whole output is scanned left to right and the first usable mention wins: an
   answer buried in extra text is found, and a later mention does not override an earlier one.
   Mentions inside a question ("Is it sarcastic? No.") are used only when the text has no
   mention outside questions (a bare "Joy?" still parses), since a model echoing the question
   has not answered yet.
3. Matching works on a normal form: lower case, "n't" read as "not", apostrophes dropped,
   every other non-alphanumeric character (hyphens, underscores, slashes) a word break. Labels
   and synonyms are matched as whole words, the longest phrase first, so a label like
   ``ask_help`` matches "Ask help", "ask-help" and "ASK_HELP", and "unhappy" never matches
   "happy".
4. Per task family:
   - close-set (``emotion_closed``, ``intent``, and any record with its own options): the label
     names themselves, nothing else; the instruction listed them, so a model is expected to
     use them.
   - ``emotion_open``: the synonym table of ``emollm_jax.eval.synonyms`` maps free words onto
     the emotion labels ("furious" -> anger, "no emotion" -> neutral).
   - yes/no (a label set of exactly yes and no): yes/no words and the task's own predicate
     ("sarcastic", "funny", "hateful" -> yes).
5. Negation (scope and cue words defined in ``emollm_jax.eval.synonyms``): a negated label or
   emotion word is skipped, not inverted, because "not happy" does not say which emotion it is;
   parsing goes on to the next mention ("not happy but sad" -> sadness) and ends unparsed if
   none is left. For yes/no, negation is informative and inverts: "not sarcastic" -> no, "not
   true" -> no. Pseudo-negations ("no doubt", "not only") are neither cues nor answers.

Unparsed answers are returned as None; metrics count them and score them wrong.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

import emollm_jax.eval.synonyms as synonyms
from emollm_jax.tasks import labels_for

_NOT = re.compile(r"n['’]t\b")
_APOSTROPHE = re.compile(r"['’]")
_TOKEN = re.compile(r"[^\W_]+|[.,;:!?\n]")
_PUNCT_BREAKS = frozenset(".,;:!?\n")
_SENTENCE_ENDS = frozenset(".!?\n")
_ANSWER_MARK = re.compile(
    r"(?<![^\W_])answer\s*[*_`]*\s*[:：][ \t*_`]*(.*)$", re.IGNORECASE | re.MULTILINE
)

_YES, _NO = "yes", "no"


def normalize(text: str) -> list[str]:
    """Words of ``text`` in the parser's normal form, with clause punctuation kept as tokens."""
    text = _APOSTROPHE.sub("", _NOT.sub(" not", text.lower()))
    return _TOKEN.findall(text)


def _phrase(text: str) -> tuple[str, ...]:
    words = tuple(t for t in normalize(text) if t not in _PUNCT_BREAKS)
    if not words:
        raise ValueError(f"label or synonym {text!r} has no words to match")
    return words


def _is_break(token: str) -> bool:
    return token in _PUNCT_BREAKS or token in synonyms.CLAUSE_BREAKS


def _negated(tokens: list[str], start: int) -> bool:
    """Whether a negation cue stands within the window before ``tokens[start]``, same clause."""
    for j in range(start - 1, max(start - synonyms.NEGATION_WINDOW, 0) - 1, -1):
        if _is_break(tokens[j]):
            return False
        if tokens[j] in synonyms.NEGATION_CUES:
            following = tokens[j + 1] if j + 1 < len(tokens) else ""
            if (tokens[j], following) not in synonyms.PSEUDO_NEGATIONS:
                return True
    return False


# Phrase index: first word -> [(phrase words, value)], longest phrase first.
_Index = dict[str, list[tuple[tuple[str, ...], str]]]


def _build_index(entries: list[tuple[str, str]]) -> _Index:
    index: _Index = {}
    for text, value in entries:
        words = _phrase(text)
        index.setdefault(words[0], []).append((words, value))
    for candidates in index.values():
        candidates.sort(key=lambda c: -len(c[0]))
    return index


def _question_flags(tokens: list[str]) -> list[bool]:
    """Per token: whether its sentence ends with a question mark."""
    flags = [False] * len(tokens)
    start = 0
    for i, token in enumerate(tokens + ["\n"]):
        if token in _SENTENCE_ENDS:
            flags[start:i] = [token == "?"] * (i - start)
            start = i + 1
    return flags


def _mentions(tokens: list[str], index: _Index) -> Iterator[tuple[str, bool, bool]]:
    """(value, negated, in a question) per phrase found, left to right, longest match first."""
    in_question = _question_flags(tokens)
    i = 0
    while i < len(tokens):
        if tuple(tokens[i : i + 2]) in synonyms.PSEUDO_NEGATIONS:
            i += 2
            continue
        for words, value in index.get(tokens[i], ()):
            if tuple(tokens[i : i + len(words)]) == words:
                yield value, _negated(tokens, i), in_question[i]
                i += len(words)
                break
        else:
            i += 1


def _is_yes_no(labels: tuple[str, ...]) -> bool:
    return sorted(_phrase(label) for label in labels) == [(_NO,), (_YES,)]


@functools.lru_cache(maxsize=256)
def _matcher(task: str, labels: tuple[str, ...]) -> tuple[_Index, bool, dict[str, str]]:
    """The phrase index for a label set, whether negation inverts, and value -> label."""
    if _is_yes_no(labels):
        to_label = {_phrase(label)[0]: label for label in labels}
        entries = [(w, _YES) for w in synonyms.YES_WORDS]
        entries += [(w, _NO) for w in synonyms.NO_WORDS]
        entries += [(w, _YES) for w in synonyms.TASK_PREDICATES.get(task, ())]
        return _build_index(entries), True, to_label
    entries = [(label, label) for label in labels]
    if task == "emotion_open":
        for label in labels:
            key = " ".join(_phrase(label))
            entries += [(w, label) for w in synonyms.EMOTION_SYNONYMS.get(key, ())]
    return _build_index(entries), False, {label: label for label in labels}


def answer_segment(output: str) -> str:
    """The text that decides: what follows the last ``Answer:`` marker, else the whole output.

    The marker's text runs to the end of its line; when that is empty, the next non-empty line.
    """
    matches = list(_ANSWER_MARK.finditer(output))
    if not matches:
        return output
    last = matches[-1]
    if last.group(1).strip():
        return last.group(1)
    rest = [line for line in output[last.end() :].splitlines() if line.strip()]
    return rest[0] if rest else ""


def parse_answer(output: str, task: str, options: list[str] | None = None) -> str | None:
    """The label ``output`` answers for ``task`` (a record's ``options`` override the defaults).

    Returns a member of ``labels_for(task, options)`` exactly as spelled there, or None when no
    label can be read (see the module docstring for the rules).
    """
    labels = labels_for(task, options)
    if not output or not output.strip():
        return None
    index, negation_inverts, to_label = _matcher(task, tuple(labels))
    in_question_only: str | None = None
    for value, negated, in_question in _mentions(normalize(answer_segment(output)), index):
        if negated and not negation_inverts:
            continue
        if negated:
            value = _NO if value == _YES else _YES
        if not in_question:
            return to_label[value]
        in_question_only = in_question_only or value
    return None if in_question_only is None else to_label[in_question_only]
