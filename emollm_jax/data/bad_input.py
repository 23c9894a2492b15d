"""Bad input: the reasons a record is refused, and the skip-and-count policy (or strict raise).

Our policy: a bad record is skipped, counted under one reason, and the counts are logged once
per source (at warning level, with a few example ids); ``config.data.strict=True`` turns the first
bad record into ``BadRecordError`` naming the record id and the reason. Checks that need only
the record and the media headers run when a source is opened (so counts are complete and
deterministic); checks that need the decoded pixels or the tokens run inside the pipeline and are
counted by the process that met them.
"""

from __future__ import annotations

import collections
import logging

log = logging.getLogger(__name__)

REASONS = (
    "invalid_utf8",  # a JSONL line (or a JSON file) is not UTF-8
    "invalid_json",  # ... or not JSON
    "malformed_record",  # fields missing or of the wrong type
    "empty_conversation",  # no turns, an empty turn, or no human / no gpt turn
    "unknown_task",  # task not among emollm_jax.tasks.TASKS
    "answer_not_in_labels",  # answer outside the task's label set (or the record's options)
    "unknown_label",  # a source data set's row whose label its label table does not know
    "path_escapes_root",  # a media path that leaves the split file's folder
    "missing_media",  # the media file does not exist
    "corrupt_media",  # undecodable image or video
    "too_many_pixels",  # an image (or a video frame) over config.data.max_pixels
    "placeholder_mismatch",  # <image> placeholders != media items
    "too_long",  # more tokens than the largest sequence bucket
    "too_many_frames",  # more frames than the largest frame bucket
)


class BadRecord(Exception):
    """Raised by a check; caught by ``BadInputLog.skip``."""

    def __init__(self, reason: str, detail: str = ""):
        assert reason in REASONS, reason
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class BadRecordError(ValueError):
    """Strict mode: the first bad record stops the run."""


class BadInputLog:
    """Counts skipped records by reason; in strict mode raises on the first one."""

    def __init__(self, where: str, strict: bool = False, examples_per_reason: int = 3):
        self.where = where
        self.strict = strict
        self.counts: collections.Counter[str] = collections.Counter()
        self.examples: dict[str, list[str]] = collections.defaultdict(list)
        self._examples_per_reason = examples_per_reason

    def skip(self, record_id: str, error: BadRecord) -> None:
        message = f"record {record_id!r} in {self.where}: {error}"
        if self.strict:
            raise BadRecordError(message) from error
        self.counts[error.reason] += 1
        if len(self.examples[error.reason]) < self._examples_per_reason:
            self.examples[error.reason].append(record_id)
        log.debug("skipped %s", message)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def log_counts(self) -> None:
        if not self.counts:
            return
        parts = ", ".join(
            f"{reason}={n} (e.g. {', '.join(self.examples[reason])})"
            for reason, n in sorted(self.counts.items())
        )
        log.warning("skipped %d bad records in %s: %s", self.total, self.where, parts)
