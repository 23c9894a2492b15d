"""A PyTorch user's whole round on an EmoLLM export, in a fresh process with only torch,
transformers, peft, numpy and Pillow: load it as users load it (float32, bfloat16, float16,
``device_map="auto"``), fine-tune a few AdamW steps on the processor's inputs for a
mini-EmoBench image record and video record (all weights; and a PEFT LoRA, merged),
``save_pretrained``; then ``hf-to-orbax`` gives checkpoints whose logits equal PyTorch's to
1e-4 (float32), and ``evaluate`` runs on one."""

import json
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from emollm_jax.checkpoint.restore import restore_model
from emollm_jax.convert import cli
from emollm_jax.data.records import read_split
from emollm_jax.inference.run import evaluate_generation
from emollm_jax.tasks import labels_for
from tests.configs import load_config
from tests.export.test_emollm_processor import DATA, _all_frames, exported  # noqa: F401

# An export, a PyTorch process (model loads in four ways, training, saving), a conversion and
# an evaluation compile.
pytestmark = pytest.mark.slow

STEPS = 3

REMOTE = textwrap.dedent(
    """
    import json, sys
    import numpy as np, torch, transformers
    from PIL import Image
    folder, cases_file, saved, saved_lora, out = sys.argv[1:]
    Auto = transformers.AutoModelForImageTextToText
    processor = transformers.AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    model = Auto.from_pretrained(folder, trust_remote_code=True)
    cases = json.load(open(cases_file))

    def inputs_of(case, answer=None):
        kind = case["kind"]
        messages = [{"role": "user", "content": [{"type": kind},
                                                 {"type": "text", "text": case["question"]}]}]
        if answer is not None:
            messages.append({"role": "assistant", "content": answer})
        text = processor.apply_chat_template(
            messages, add_generation_prompt=answer is None, tokenize=False
        )
        medium = Image.open(case["media"]) if kind == "image" else np.load(case["media"])
        given = {"images": [medium]} if kind == "image" else {"videos": [medium]}
        return processor(text=text, **given)

    report = {}
    # Loading as users load: logits against float32's, relative to float32's largest.
    image = inputs_of(cases["image"])
    model.eval()
    with torch.no_grad():
        reference = model(**image).logits
    for name, kwargs in {"bfloat16": {"dtype": torch.bfloat16},
                         "float16": {"dtype": torch.float16},
                         "device_map_auto": {"device_map": "auto"}}.items():
        other = Auto.from_pretrained(folder, trust_remote_code=True, **kwargs).eval()
        given = dict(image, pixel_values=image["pixel_values"].to(other.dtype))
        with torch.no_grad():
            logits = other(**given).logits.float()
            other.generate(**given, max_new_tokens=2, do_sample=False)
        report[name] = float((logits - reference).abs().max() / reference.abs().max())

    def fine_tune(model, lr):
        # AdamW steps; the answer's tokens (and the prompt's) are the targets, media not.
        model.train()
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(trainable, lr=lr)
        losses = []
        for step in range(%d):
            case = cases[("image", "video")[step %% 2]]
            batch = inputs_of(case, case["answer"])
            labels = batch["input_ids"].clone()
            labels[labels == processor.image_token_id] = -100
            loss = model(**batch, labels=labels).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            losses.append(loss.item())
        return losses

    report["losses"] = fine_tune(model, 1e-3)
    model.eval()
    model.save_pretrained(saved)
    processor.save_pretrained(saved)
    results = {}
    for name, case in cases.items():
        inputs = inputs_of(case)
        with torch.no_grad():
            results[f"{name}/logits"] = model(**inputs).logits.numpy()
        results.update({f"{name}/{k}": v.numpy() for k, v in inputs.items()})

    # PEFT LoRA on the export, merged into the weights for the way back.
    import peft
    base = Auto.from_pretrained(folder, trust_remote_code=True)
    lora = peft.get_peft_model(base, peft.LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    ))
    report["lora_losses"] = fine_tune(lora, 1e-2)
    merged = lora.merge_and_unload().eval()
    merged.save_pretrained(saved_lora)
    inputs = inputs_of(cases["image"])
    with torch.no_grad():
        results["lora/logits"] = merged(**inputs).logits.numpy()
    results.update({f"lora/{k}": v.numpy() for k, v in inputs.items()})
    assert not any(m.startswith("emollm_jax") for m in sys.modules)
    np.savez(out, **results)
    json.dump(report, open(out + ".json", "w"))
    """
    % STEPS
)


def _cases(data_dir, tmp_path) -> dict:
    records, _ = read_split(data_dir, "test", max_pixels=16_000_000)
    cases = {}
    for kind in ("image", "video"):
        record = next(r for r in records if [m["type"] for m in r["media"]] == [kind])
        human = next(t["value"] for t in record["conversations"] if t["from"] == "human")
        media = record["media"][0]["path"]
        if kind == "video":
            np.save(tmp_path / "video.npy", _all_frames(media))
            media = tmp_path / "video.npy"
        question = human.replace("<image>", "").strip()
        cases[kind] = {"kind": kind, "question": question, "media": str(media),
                       "answer": record["answer"]}  # fmt: skip
    return cases


def test_pytorch_fine_tune_converts_back_with_its_logits_and_evaluates(
    exported, small_emobench, tmp_path  # noqa: F811
):
    _, folder = exported
    cases = _cases(small_emobench, tmp_path)
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    saved, saved_lora, out = tmp_path / "tuned", tmp_path / "lora", tmp_path / "out.npz"
    argv = [folder, tmp_path / "cases.json", saved, saved_lora, out]
    proc = subprocess.run(
        [sys.executable, "-c", REMOTE, *argv],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "out.npz.json").read_text())
    # Loading as users load: within each dtype's rounding (relative to the largest logit).
    assert report["bfloat16"] < 5e-2 and report["float16"] < 1e-2, report
    assert report["device_map_auto"] == 0.0, report
    assert len(report["losses"]) == STEPS and all(np.isfinite(report["losses"]))

    assert cli.main(["hf-to-orbax", str(saved), str(tmp_path / "converted")]) == 0
    assert cli.main(["hf-to-orbax", str(saved_lora), str(tmp_path / "converted_lora")]) == 0
    theirs = np.load(out)
    for name, converted in (("image", "converted"), ("video", "converted"),
                            ("lora", "converted_lora")):  # fmt: skip
        model = restore_model(tmp_path / converted)
        inputs = {k.split("/")[1]: v for k, v in theirs.items() if k.startswith(f"{name}/")}
        logits = inputs.pop("logits")
        inputs.pop("attention_mask")
        with jax.default_matmul_precision("highest"):
            mine = np.asarray(model(**{k: jnp.asarray(v) for k, v in inputs.items()}))
        assert np.abs(mine - logits).max() < 1e-4, name
        assert np.abs(logits).max() > 0.5, name
    # The two fine-tunes moved the weights apart (the comparison above is not vacuous).
    assert np.abs(theirs["lora/logits"] - theirs["image/logits"]).max() > 1e-2

    config = load_config("emollm_tiny")
    config.data.dir = str(small_emobench)
    config.data.tokenizer = DATA["tokenizer"]
    config.data.video_frames = DATA["video_frames"]
    config.eval.max_new_tokens = 4
    config.eval.limit = 4
    result = evaluate_generation(
        config, str(tmp_path / "converted"), "test", str(tmp_path / "eval"), log=lambda _: None
    )
    rows = [json.loads(line) for line in (tmp_path / "eval" / "predictions.jsonl").open()]
    assert len(rows) == 4 and result is not None
    assert all(r["parsed"] is None or r["parsed"] in labels_for(r["task"]) for r in rows)
