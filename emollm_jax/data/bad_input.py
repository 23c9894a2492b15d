"""Bad input: the reasons a record is refused, and the skip-and-count policy (or strict raise).

Our policy: a bad record is skipped, counted under one reason, and the counts are logged once
per source (at warning level, with a few example ids; inside the pipeline as a running summary at
most every ``SUMMARY_EVERY_S`` seconds); ``config.data.strict=True`` turns the first bad record
into ``BadRecordError`` naming the record id and the reason. A training stream that refuses
``config.data.max_consecutive_bad`` records in a row (every record too long for the buckets,
every media file undecodable...) would never yield a batch: it stops with ``TooManyBadRecords``
naming the reasons and their counts. Checks that need only
the record and the media headers run when a source is opened (so counts are complete and
deterministic); checks that need the decoded pixels or the tokens run inside the pipeline and are
counted by the process that met them.
"""

from __future__ import annotations

import collections
import logging
import time

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


SUMMARY_EVERY_S = 30.0


class BadRecordError(ValueError):
    """Strict mode: the first bad record stops the run."""


class TooManyBadRecords(BadRecordError):
    """``max_consecutive`` records in a row were refused: the stream would never yield."""


class BadInputLog:
    """Counts skipped records by reason; in strict mode raises on the first one."""

    def __init__(
        self,
        where: str,
        strict: bool = False,
        examples_per_reason: int = 3,
        max_consecutive: int = 0,
    ):
        self.where = where
        self.strict = strict
        self.max_consecutive = max_consecutive  # 0: no bound
        self.counts: collections.Counter[str] = collections.Counter()
        self.examples: dict[str, list[str]] = collections.defaultdict(list)
        self.consecutive = 0
        self.accepted = 0
        self._examples_per_reason = examples_per_reason
        self._last_summary: float | None = None

    def skip(self, record_id: str, error: BadRecord) -> None:
        message = f"record {record_id!r} in {self.where}: {error}"
        if self.strict:
            raise BadRecordError(message) from error
        self.counts[error.reason] += 1
        self.consecutive += 1
        if len(self.examples[error.reason]) < self._examples_per_reason:
            self.examples[error.reason].append(record_id)
        log.debug("skipped %s", message)
        if self.max_consecutive and self.consecutive >= self.max_consecutive:
            raise TooManyBadRecords(
                f"{self.where}: {self.consecutive} records in a row were refused "
                f"(config.data.max_consecutive_bad={self.max_consecutive}), "
                f"{self.accepted} accepted before; refused so far: {self._parts()}. The last: "
                f"{message}. No batch can be made: check config.data (seq_buckets, "
                "frame_buckets, max_pixels) against the data."
            )

    def accept(self) -> None:
        """A record passed: the run of consecutive refusals is over."""
        self.consecutive = 0
        self.accepted += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def _parts(self) -> str:
        return ", ".join(
            f"{reason}={n} (e.g. {', '.join(self.examples[reason])})"
            for reason, n in sorted(self.counts.items())
        )

    def log_counts(self) -> None:
        if not self.counts:
            return
        log.warning("skipped %d bad records in %s: %s", self.total, self.where, self._parts())

    def log_summary(self, every_s: float = SUMMARY_EVERY_S) -> None:
        """``log_counts`` at most once per ``every_s`` seconds (the first time at once): a
        stream refusing many records logs a running summary, not a line per record."""
        now = time.monotonic()
        if self._last_summary is None or now - self._last_summary >= every_s:
            self._last_summary = now
            self.log_counts()
