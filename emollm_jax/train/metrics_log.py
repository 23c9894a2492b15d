"""Where training metrics go: ``metrics.jsonl`` (one JSON object per logged step), TensorBoard
event files, and the terminal (a progress bar on an interactive one, plain lines otherwise).
Only JAX process 0 writes. A resumed run first drops the rows logged after its restored step
(steps done again after a preemption would otherwise appear twice): ``metrics.jsonl`` is
rewritten without them, and TensorBoard is told to purge its events from that step on. A line
of ``metrics.jsonl`` that is no row (torn by a crash, garbage) is named in the log and moved to
``metrics.jsonl.set_aside`` beside it.
In a cloud storage workdir (``gs://``, ``s3://``) both files are objects, rewritten whole at each
flush."""

from __future__ import annotations

import json
import logging
import math
import os
import sys

import jax

from emollm_jax.paths import AnyPath, as_path, is_url, url_scheme, write_text_atomic

log = logging.getLogger(__name__)


class MetricsLog:
    def __init__(
        self,
        workdir,
        *,
        total_steps: int,
        start_step: int,
        tensorboard: bool,
        progress_bar: str = "auto",
    ):
        self.enabled = jax.process_index() == 0
        self.path = as_path(workdir) / "metrics.jsonl"
        self._file = self._tb = self._bar = None
        if not self.enabled:
            return
        _drop_rows_after(self.path, start_step)
        if is_url(self.path):  # an object store cannot append: the object is rewritten whole
            self._file = _RewrittenObject(self.path)
        else:
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())
        if tensorboard:
            from tensorboardX import SummaryWriter

            tb_dir = as_path(workdir) / "tensorboard"
            if is_url(tb_dir):
                _register_object_store_events(url_scheme(tb_dir))
            self._tb = SummaryWriter(os.fspath(tb_dir), purge_step=start_step + 1)
        interactive = sys.stderr.isatty() and os.environ.get("CI") is None
        if progress_bar == "on" or (progress_bar == "auto" and interactive):
            from tqdm import tqdm

            self._bar = tqdm(total=total_steps, initial=start_step, unit="step", dynamic_ncols=True)

    def write(self, step: int, metrics: dict) -> None:
        if not self.enabled:
            return
        row = {"step": step} | {k: _plain(v) for k, v in metrics.items()}
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()
        if self._tb is not None:
            for k, v in row.items():
                if k != "step" and isinstance(v, (int, float)) and math.isfinite(v):
                    self._tb.add_scalar(f"train/{k}", v, step)
        m = {k: float(v) for k, v in metrics.items()}
        summary = (
            f"step {step}: loss {m['loss']:.4f} lr {m['learning_rate']:.2e} "
            f"grad_norm {m['grad_norm']:.3f} {m['tokens_per_sec']:.0f} tok/s "
            f"MFU {100 * m['mfu']:.1f}%"
        )
        if self._bar is not None:
            self._bar.set_postfix_str(summary.split(": ", 1)[1], refresh=False)
        else:
            print(summary, flush=True)

    def advance(self, steps: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(steps)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        if self._tb is not None:
            self._tb.close()
        if self._file is not None:
            self._file.close()


class _RewrittenObject:
    """A text file on cloud storage opened for appending: objects cannot be appended to, so
    each ``flush`` writes the whole content again (one object write, atomic; the log is a
    few hundred rows)."""

    def __init__(self, path):
        self.path = path
        self._text = path.read_text(encoding="utf-8") if path.exists() else ""

    def write(self, text: str) -> None:
        self._text += text

    def flush(self) -> None:
        self.path.write_text(self._text, encoding="utf-8")

    def close(self) -> None:
        self.flush()


class _ObjectEventsFile:
    """TensorBoard's events file on cloud storage, through epath: buffered, and rewritten whole
    on every flush (tensorboardX's own ``gs://`` and ``s3://`` writers need google-cloud-storage's
    or boto3's client and credentials; this one uses the same path library as everything else)."""

    def __init__(self, path: str):
        self.path = as_path(path)
        self.buffer = bytearray()

    def write(self, data: bytes) -> None:
        self.buffer += data

    def flush(self) -> None:
        self.path.write_bytes(bytes(self.buffer))

    def close(self) -> None:
        self.flush()


class _ObjectEventsFactory:
    def open(self, path: str) -> _ObjectEventsFile:
        return _ObjectEventsFile(path)

    def directory_check(self, path: str) -> None:
        pass  # an object store has no folders to create


def _register_object_store_events(scheme: str) -> None:
    from tensorboardX import record_writer

    record_writer.register_writer_factory(scheme, _ObjectEventsFactory())


SET_ASIDE = "metrics.jsonl.set_aside"  # beside metrics.jsonl: its lines that are no row


def _drop_rows_after(path: AnyPath, step: int) -> None:
    """Rewrite ``path`` (atomically) without the rows of steps after ``step``, and without
    its lines that are no metrics row (a line torn by a crash mid-write, garbage): those are
    named in the log and appended to ``SET_ASIDE`` beside it, not kept to be appended to."""
    if not path.exists():
        return
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept, bad = [], []
    for number, line in enumerate(lines, 1):
        row_step = _row_step(line)
        if row_step is None:
            if line.strip():
                bad.append((number, line.rstrip("\n")))
        elif row_step <= step:
            kept.append(line)
    if len(kept) == len(lines):
        return
    if bad:
        _set_aside(path, bad)
    dropped = len(lines) - len(kept) - len(bad)
    if dropped:
        log.info("%s: dropping %d rows logged after step %d", path, dropped, step)
    write_text_atomic(path, "".join(kept))


def _set_aside(path: AnyPath, bad: list[tuple[int, str]]) -> None:
    """Append ``bad`` (line number, text) to ``SET_ASIDE`` beside ``path``; name them."""
    aside = path.parent / SET_ASIDE
    before = aside.read_text(encoding="utf-8") if aside.exists() else ""
    write_text_atomic(aside, before + "".join(f"{path.name}:{n}: {text}\n" for n, text in bad))
    for number, text in bad:
        shown = text if len(text) <= 80 else text[:77] + "..."
        log.warning(
            "%s line %d is not a metrics row (torn by a crash?): %r; moved to %s",
            path, number, shown, aside,
        )  # fmt: skip


def _row_step(line: str) -> float | None:
    """The step of a metrics row, None for a line that is not one."""
    try:
        step = json.loads(line)["step"]
    except (ValueError, KeyError, TypeError):
        return None
    return step if isinstance(step, int | float) and not isinstance(step, bool) else None


def _plain(v):
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)  # JSON has no NaN/inf
    return v
