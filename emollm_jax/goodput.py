"""Goodput of a training run from its event log (``<workdir>/events.jsonl``, written by every
start of the run: ``emollm_jax/train/events.py``).

    emollm goodput WORKDIR [--json]      (or python -m emollm_jax.goodput)

Goodput is the share of wall time (from the first start to the last event) spent in productive
steps: steps whose result survived, less compilation, data waiting and checkpoint blocking.
The rest is badput, by cause; the causes and goodput add up to the whole wall time:

- ``initialisation``: from a start to the step loop, less the restore;
- ``compilation``: tracing, lowering and compiling (or loading from the compilation cache);
- ``restore``: reading the checkpoint a restart resumes from;
- ``checkpoint``: the step loop blocked by saves (every tier, and the final save's wait);
- ``data``: the step loop waiting for batches;
- ``lost_steps``: steps done again after a restart (done, then lost with the process, before
  the checkpoint the restart resumed from had them);
- ``hang``: from the last finished step to the watchdog's ``hang`` event;
- ``restart_gap``: from an attempt's last event to the next start (the scheduler's delay, and
  whatever a killed process did after its last event);
- ``other``: the rest of each attempt (logging, shutting down...).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict

from emollm_jax.paths import as_path
from emollm_jax.train.events import FILE

CAUSES = (
    "initialisation",
    "compilation",
    "restore",
    "checkpoint",
    "data",
    "lost_steps",
    "hang",
    "restart_gap",
    "other",
)


def read_events(workdir) -> list[dict]:
    path = as_path(workdir) / FILE
    if not path.exists():
        raise FileNotFoundError(f"{path}: no event log (a run writes it from its first start)")
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue  # a line torn by a kill
    return sorted(rows, key=lambda r: r["time"])


def _attempts(rows: list[dict]) -> list[list[dict]]:
    """Process 0's rows (and the others' failures) per attempt, attempts in start order."""
    by_attempt: dict[str, list[dict]] = defaultdict(list)
    order = []
    for row in rows:
        if row["attempt"] not in by_attempt and row["event"] != "start":
            continue  # a failure row of an attempt whose start process 0 did not write
        if row["event"] == "start" and row["attempt"] not in by_attempt:
            order.append(row["attempt"])
        by_attempt[row["attempt"]].append(row)
    return [by_attempt[a] for a in order]


def summarize(rows: list[dict]) -> dict:
    """Seconds and shares of wall time per cause, goodput, and what happened (steps, restarts)."""
    attempts = _attempts(rows)
    if not attempts:
        raise ValueError("the event log has no start event")
    seconds = dict.fromkeys(("productive", *CAUSES), 0.0)
    windows = []  # (attempt index, last step, count, step_s) of every `steps` row
    restores = []
    resumed_from = []  # (attempt index, the step its loop started from)
    hangs = crashes = 0  # attempts that ended so
    for i, events in enumerate(attempts):
        # Time is booked from process 0's rows; the others add only their failures, and
        # every process's watchdog reports the same hang (counted once).
        begin, end = events[0]["time"], events[-1]["time"]
        failures = [e for e in events if e["event"] in ("hang", "crash")]
        events = [e for e in events if e.get("process", 0) == 0]
        accounted = 0.0
        ready = next((e for e in events if e["event"] == "ready"), None)
        restore = next((e for e in events if e["event"] == "restore"), None)
        restore_s = restore["seconds"] if restore else 0.0
        if restore:
            restores.append({"step": restore["step"], "tier": restore["tier"]})
        if ready:
            resumed_from.append((i, ready["step"]))
        init = (ready["time"] if ready else end) - begin - restore_s
        seconds["initialisation"] += init
        seconds["restore"] += restore_s
        accounted += init + restore_s
        for e in events:
            kind = e["event"]
            if kind == "compile":
                seconds["compilation"] += e["seconds"]
                accounted += e["seconds"]
            elif kind == "steps":
                seconds["productive"] += e["step_s"]
                seconds["data"] += e["data_s"]
                accounted += e["step_s"] + e["data_s"]
                windows.append((i, e["step"], e["count"], e["step_s"]))
            elif kind == "checkpoint":
                seconds["checkpoint"] += e["blocked_s"]
                accounted += e["blocked_s"]
        hung = max((e["idle_s"] for e in failures if e["event"] == "hang"), default=0.0)
        seconds["hang"] += hung
        accounted += hung
        ended = {e["event"] for e in failures}
        hangs += "hang" in ended
        crashes += "crash" in ended
        seconds["other"] += (end - begin) - accounted
        if i + 1 < len(attempts):
            seconds["restart_gap"] += attempts[i + 1][0]["time"] - end
    # Steps redone: a window's steps after the step a later attempt resumed from were lost.
    for i, last, count, step_s in windows:
        later = [step for j, step in resumed_from if j > i]
        if not later:
            continue
        resumed = min(later)  # the earliest resume after this attempt decides what survived
        lost = min(count, max(0, last - max(resumed, last - count)))
        moved = step_s * lost / count if count else 0.0
        seconds["productive"] -= moved
        seconds["lost_steps"] += moved
    wall = attempts[-1][-1]["time"] - attempts[0][0]["time"]
    share = {k: (v / wall if wall > 0 else 0.0) for k, v in seconds.items()}
    kinds = [e["event"] for a in attempts for e in a]
    return {
        "wall_s": wall,
        "goodput": share["productive"],
        "seconds": seconds,
        "share": share,
        "attempts": len(attempts),
        "restores": restores,
        "preemptions": kinds.count("preempted"),
        "hangs": hangs,
        "crashes": crashes,
        "last_step": max((w[1] for w in windows), default=None),
    }


def format_summary(r: dict) -> str:
    lines = [
        f"wall time {r['wall_s']:.1f} s over {r['attempts']} start(s); "
        f"{r['preemptions']} preemption(s), {r['hangs']} hang(s), {r['crashes']} crash(es); "
        f"last step {r['last_step']}",
        f"goodput {100 * r['goodput']:.1f}% ({r['seconds']['productive']:.1f} s of productive "
        "steps)",
        "badput:",
    ]
    for cause in CAUSES:
        lines.append(f"  {cause:<15} {r['seconds'][cause]:9.1f} s  {100 * r['share'][cause]:5.1f}%")
    for restore in r["restores"]:
        lines.append(f"restored step {restore['step']} from the {restore['tier']} tier")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("workdir", help="the run folder (holds events.jsonl)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    try:
        r = summarize(read_events(args.workdir))
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(r, indent=2) if args.json else format_summary(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
