"""The README's plain ``python -m`` commands come after it says they need the virtualenv."""

from tests.configs import REPO


def test_plain_commands_follow_the_virtualenv_instructions():
    text = (REPO / "README.md").read_text()
    commands = text.index("## Commands")
    first_plain = text.index("\npython -m emollm_jax", commands)
    activate = text.find("source .venv/bin/activate", commands)
    assert commands < activate < first_plain
    assert "JAX_PLATFORMS=cpu" in text[activate:first_plain]
