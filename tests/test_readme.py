"""The README and docs/ say what is true of the tree: the plain commands come after how to get
the virtualenv, every `emollm` job, `python -m` module, config file and relative link they name
exists, the README stays short, and no page names an issue number or a commit."""

import importlib.util
import re

import pytest

from emollm_jax.cli.main import find_job
from tests.configs import REPO

README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").rglob("*.md"))]


def _text(path) -> str:
    return path.read_text(encoding="utf-8")


def _code(text: str) -> str:
    """The fenced code blocks of a page, joined."""
    return "\n".join(re.findall(r"```[a-z]*\n(.*?)```", text, re.S))


@pytest.mark.parametrize("page", [README, REPO / "docs/commands.md"], ids=lambda p: p.name)
def test_plain_commands_follow_the_virtualenv_instructions(page):
    text = _text(page)
    first_plain = re.search(r"\n(emollm|python -m emollm_jax)\b", text[text.index("```") :])
    assert first_plain, f"{page.name}: no plain command"
    first_plain = text.index("```") + first_plain.start()
    activate = text.find("source .venv/bin/activate")
    assert 0 < activate < first_plain
    assert "JAX_PLATFORMS=cpu" in text[activate:first_plain]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_named_job_module_config_and_link_exists(page):
    text = _text(page)
    for words in re.findall(r"(?<![\w.-])emollm ((?:data )?[a-z][a-z-]*)", text):
        job, _ = find_job(words.split())
        assert job is not None, f"{page.name}: `emollm {words}` is no job"
    for module in re.findall(r"python -m (emollm_jax[\w.]*)", text):
        assert importlib.util.find_spec(module) is not None, f"{page.name}: {module}"
    for config in re.findall(r"\bconfigs/\w+\.py", text):
        assert (REPO / config).is_file(), f"{page.name}: {config}"
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if "://" not in target:
            assert (page.parent / target).exists(), f"{page.name}: link {target}"


def test_the_readme_reads_in_five_minutes():
    text = _text(README)
    assert len(text.splitlines()) <= 200
    for heading in ("## Set-up: two commands", "## User's guide", "## Status"):
        assert heading in text
    code = _code(text)
    assert "bash launch/main.sh" in code and "bash launch/test.sh" in code


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_issue_numbers_or_commit_hashes(page):
    text = _text(page)
    assert not re.search(r"\bissues? #?\d+|this stop\b", text, re.I), page.name
    assert not re.search(r"`[0-9a-f]{7,40}`", text), page.name
