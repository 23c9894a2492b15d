"""An EmoLLM export's model card works when pasted: its Python, run as it stands in a fresh
process that imports only torch, transformers and Pillow, loads the folder the card names and
prints a reply that our answer parser reads as a label. The card shows the run's prompt format
(EmoPrompt's guiding prompt) and says what the model is.

The exported model is rigged so that its reply is known: the language model's attention and MLP
outputs are zero, so each position sees only its own token's embedding, and the head maps the
prompt's last token to " joy" and " joy" to the end of the sequence."""

import re
import subprocess
import sys

import numpy as np
import pytest
from flax import nnx
from PIL import Image

from emollm_jax.checkpoint.manager import RunCheckpoints
from emollm_jax.config.model import from_config_dict, to_dict
from emollm_jax.convert import cli
from emollm_jax.data import chat_templates
from emollm_jax.data.pipeline import load_tokenizer
from emollm_jax.eval.answers import parse_answer
from emollm_jax.models.build import abstract_model
from tests.configs import REPO, load_config
from tests.export.test_emollm_export import _randomized

# An orbax-to-hf export, then the card's Python in a fresh process (torch import, model load).
pytestmark = pytest.mark.slow

TOKENIZER = str(REPO / "emollm_jax" / "assets" / "tokenizer")
CONFIG = {
    "data": {"tokenizer": TOKENIZER, "chat_template": "vicuna_v1", "video_frames": 4,
             "dir": "data/mini_emobench"},
    "train": {"steps": 30, "stage": 2, "learning_rate": 1e-3},
    "emoprompt": {"guiding_prompts": True, "rationale_targets": False},
}  # fmt: skip
GUIDE = "Answer with exactly one of: anger, joy, sadness, surprise."


def _rigged(params, tokenizer):
    """``params`` answering " joy" then eos to any Vicuna prompt (see the module docstring)."""
    lm = params["language_model"]
    lm["layers"]["attn"]["o"]["kernel"][...] = 0
    lm["layers"]["mlp"]["down"]["kernel"][...] = 0
    lm["norm"]["scale"][...] = 1
    prompt = chat_templates.render(
        [{"from": "human", "value": "<image>\nq"}], "vicuna_v1", tokenizer, prompt_only=True
    ).text
    last = tokenizer(prompt.split("<image>")[-1], add_special_tokens=False)["input_ids"][-1]
    reply = tokenizer(" joy", add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    embed, head = lm["embed_tokens"]["embedding"], lm["lm_head"]["kernel"]
    for prev, nxt in zip([last, *reply[:-1]], reply):
        head[:, nxt] = 4 * embed[prev] / np.linalg.norm(embed[prev])
    return params


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("model_card")
    cfg = from_config_dict(load_config("emollm_tiny").model)
    shapes = nnx.to_pure_dict(nnx.split(abstract_model(cfg))[1])
    params = _rigged(_randomized(shapes, np.random.default_rng(0)), load_tokenizer(TOKENIZER))
    ckpts = RunCheckpoints(root / "run" / "checkpoints", async_save=False)
    meta = {"model": to_dict(cfg), "config": CONFIG, "step": 30}
    ckpts.save(30, params=params, opt_state={"n": np.zeros(())}, train={"step": np.int64(30)},
               meta=meta)  # fmt: skip
    ckpts.close()
    assert cli.main(["orbax-to-hf", str(root / "run"), str(root / "my-export")]) == 0
    return root / "my-export"


def test_card_says_what_the_model_is_and_its_prompt(folder):
    card = (folder / "README.md").read_text()
    assert card.startswith("# EmoLLM (emollm_jax export)")
    assert "random initialisation" in card and "not a usable emotion model" in card
    assert f"folder = {str(folder)!r}" in card and ".partial-" not in card
    # The guiding prompt EmoPrompt appends, with the answer format, in the text and the code.
    assert card.count(GUIDE) == 2 and "Weigh the facial expression" in card


def test_card_python_runs_as_pasted_and_its_reply_parses(folder, tmp_path):
    card = (folder / "README.md").read_text()
    (code,) = re.findall(r"```python\n(.*?)```", card, re.S)
    Image.new("RGB", (90, 70), "peachpuff").save(tmp_path / "face.jpg")
    check = "\nimport sys\nassert not any(m.startswith('emollm_jax') for m in sys.modules)\n"
    proc = subprocess.run(
        [sys.executable, "-I", "-c", code + check], capture_output=True, text=True, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    reply = proc.stdout.strip().splitlines()[-1]
    options = ["anger", "joy", "sadness", "surprise"]
    assert parse_answer(reply, "emotion_closed", options) == "joy", reply
