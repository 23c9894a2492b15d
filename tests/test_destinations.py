"""Commands that write refuse a destination that is their source, contains it or lies in it;
the mini EmoBench is not written over an existing one; exported folders follow the umask."""

import os
import stat

import pytest

from emollm_jax.convert import cli as convert_cli
from emollm_jax.convert.safetensors_io import atomic_output_dir
from emollm_jax.data import emobench_tfds
from emollm_jax.data.mini import make_mini_emobench
from emollm_jax.destinations import DestinationError, check_destination
from emollm_jax.inference.run import check_out_dir


def _run_folder(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints" / "2").mkdir(parents=True)
    (run / "checkpoints" / "2" / "weights").write_text("precious")
    return run


def _intact(run):
    return (run / "checkpoints" / "2" / "weights").read_text() == "precious"


@pytest.mark.parametrize("dest", ["run", "run/checkpoints/export", "."])
def test_check_destination_refuses_source_inside_and_containing(tmp_path, dest):
    run = _run_folder(tmp_path)
    with pytest.raises(DestinationError, match="could destroy the input"):
        check_destination(tmp_path / dest, run)
    check_destination(tmp_path / "elsewhere", run)  # a sibling is fine


@pytest.mark.parametrize("command", ["orbax-to-hf", "hf-to-orbax"])
def test_convert_into_its_own_source_is_refused_and_the_source_kept(tmp_path, command, capsys):
    run = _run_folder(tmp_path)
    for dst in (run, run / "out", tmp_path):
        code = convert_cli.main([command, str(run), str(dst), "--overwrite"])
        assert code == convert_cli.BAD_INPUT
        assert "destination" in capsys.readouterr().err
        assert _intact(run)


def test_tfds_build_refuses_its_source_but_not_the_default_inside(tmp_path):
    src = tmp_path / "data"
    src.mkdir()
    for dest in (src, tmp_path):
        with pytest.raises(DestinationError, match="tfds_dir"):
            emobench_tfds.build(src, dest)
    check_destination(src / "tfds", src, allow_inside=True)  # the default <src>/tfds


def test_evaluate_output_may_sit_in_the_run_but_not_in_its_checkpoints(tmp_path):
    run = _run_folder(tmp_path)
    check_out_dir(run / "eval" / "test", str(run))  # the default
    for out in (run, tmp_path, run / "checkpoints" / "eval"):
        with pytest.raises(DestinationError, match="--workdir"):
            check_out_dir(out, str(run))


def test_mini_emobench_refuses_an_existing_folder_unless_overwrite(tmp_path, capsys):
    sizes = {"train": 6, "validation": 0, "test": 0}
    out = make_mini_emobench.build(tmp_path / "mini", sizes=sizes)
    before = (out / "train.jsonl").read_bytes()
    with pytest.raises(FileExistsError, match="train.jsonl"):
        make_mini_emobench.build(out, seed=1, sizes=sizes)
    assert (out / "train.jsonl").read_bytes() == before
    with pytest.raises(SystemExit) as exit_info:
        make_mini_emobench.main([str(out), "--train=6", "--validation=0", "--test=0"])
    assert exit_info.value.code == 2 and "--overwrite" in capsys.readouterr().err
    make_mini_emobench.build(out, seed=1, sizes=sizes, overwrite=True)
    assert (out / "train.jsonl").read_bytes() != before


def test_exported_folder_follows_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_output_dir(tmp_path / "export") as tmp:
            (tmp / "f").write_text("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "export").stat().st_mode) == 0o755
