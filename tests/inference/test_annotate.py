"""emollm annotate: the teacher's prompt, kept and dropped rationales,
the files it writes, and a real run with a tiny Hugging Face teacher."""

import copy
import json
import os
import subprocess
import sys

import pytest

import emollm_jax
from emollm_jax.config.model import from_config_dict
from emollm_jax.emoprompt import make_prompt_hook
from emollm_jax.inference.annotate import TeacherHook, annotate
from emollm_jax.models.build import build_model
from tests.configs import REPO, load_config


def _config(mini_dir):
    c = load_config("emollm_tiny", "baseline")
    c.data.dir = str(mini_dir)
    c.data.eval_batch_size = 4
    c.data.seq_buckets = (512,)  # the teacher's prompts are long
    return c


def test_teacher_is_told_the_answer():
    record = {
        "task": "humor",
        "media": [{"type": "image"}],
        "conversations": [
            {"from": "human", "value": "<image>\nIs this funny? "},
            {"from": "gpt", "value": "no"},
        ],
        "answer": "no",
    }
    out = TeacherHook()(copy.deepcopy(record))
    assert out["conversations"][0]["value"] == (
        "<image>\nIs this funny?\nWeigh visual gags and any incongruity between the picture and "
        "the caption, then the facial expression. The correct answer is no. Explain in one or two "
        "sentences which of these cues show that, then write a last line 'Answer: no'."
    )
    assert out["conversations"][1] == record["conversations"][1]


def test_kept_and_dropped_rationales_are_written_and_counted(mini_dir, tmp_path):
    def fake_teacher(arrays, meta):
        texts = []
        for m in meta:
            n = int(m["id"].rsplit("-", 1)[1])
            if n % 3 == 0:
                texts.append(f"Some cue.\nAnswer: {m['answer'].upper()}.")
            elif n % 3 == 1:
                texts.append("Some cue.\nAnswer: maybe")
            else:
                texts.append("Some cue, no answer line.")
        return texts

    out = tmp_path / "train.rationales.jsonl"
    c = _config(mini_dir)
    result = annotate(c, None, "train", out, limit=10, generate=fake_teacher, log=lambda _: None)
    kept = [json.loads(line) for line in out.read_text().splitlines()]
    dropped = [json.loads(line) for line in result.paths["dropped"].read_text().splitlines()]
    assert len(kept) + len(dropped) == 10
    assert result.kept == len(kept) > 0
    assert result.dropped == {
        "no_answer_line": sum(d["reason"] == "no_answer_line" for d in dropped),
        "wrong_label": sum(d["reason"] == "wrong_label" for d in dropped),
    }
    assert all(k["rationale"] == "Some cue." for k in kept)
    assert {d["text"] for d in dropped} <= {"Some cue.\nAnswer: maybe", "Some cue, no answer line."}
    summary = json.loads(result.paths["summary"].read_text())
    assert summary["records"] == 10 and summary["kept"] == result.kept
    assert sum(sum(v.values()) for v in summary["by_task"].values()) == 10
    # Training reads them through config.emoprompt.rationales_file.
    c.emoprompt.rationale_targets = True
    c.emoprompt.rationales_file = str(out)
    assert make_prompt_hook(c, "train").rationales == {k["id"]: "Some cue." for k in kept}


@pytest.mark.slow  # the CLI in a subprocess: JAX start-up and the teacher's decoder compiled
def test_cli_with_a_tiny_hugging_face_teacher(mini_dir, tmp_path):
    c = _config(mini_dir)
    teacher = tmp_path / "teacher"
    emollm_jax.save_hf(build_model(from_config_dict(c.model), seed=0), teacher)
    out = tmp_path / "r.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "emollm_jax.inference.annotate",
        "--config",
        str(REPO / "configs" / "emollm_tiny.py") + ":baseline",
        f"--teacher={teacher}",
        f"--out={out}",
        "--limit=4",
        "--max_new_tokens=3",
        f"--config.data.dir={mini_dir}",
        "--config.data.eval_batch_size=4",
        "--config.data.seq_buckets=(512,)",
    ]
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_backend_optimization_level=0"}
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "r.summary.json").read_text())
    # A random teacher writes no "Answer:" line in 3 tokens: every rationale is dropped.
    assert summary["records"] == 4
    assert summary["kept"] == 0 and summary["dropped"] == {"no_answer_line": 4}
    assert "kept 0 of 4 rationales" in done.stdout
