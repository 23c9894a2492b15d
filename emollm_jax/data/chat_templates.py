"""Chat templates: a conversation becomes text segments, each marked as loss target or not.

Three templates, chosen by ``config.data.chat_template``:

- ``vicuna_v1``: LLaVA v1's conversation format, ``<s>`` + system + `` USER: {human} ASSISTANT:``
  + `` {gpt}</s>`` per turn. The bos token is prepended by the tokenizer step (``bos=True``).
- ``chatml``: Qwen's format, ``<|im_start|>{role}\\n{text}<|im_end|>\\n`` per message, with Qwen's
  default system message, ending the prompt at ``<|im_start|>assistant\\n``.
- ``tokenizer``: the tokenizer's own Jinja ``chat_template`` (``apply_chat_template``).

Our choices where the sources leave room:

- The target of an assistant turn is its text *and* the end-of-turn marker (``</s>`` or
  ``<|im_end|>``), so that the model learns to stop; the newline ChatML puts after
  ``<|im_end|>`` is not a target. For Vicuna the space after ``ASSISTANT:`` belongs to the target
  (the prompt ends at ``ASSISTANT:``, as LLaVA's generation prompt does).
- For ``tokenizer`` the segments come from rendering growing prefixes of the conversation: the
  text the template adds for an assistant message (after the generation prompt) is the target,
  minus trailing whitespace.
- ``prompt_only=True`` renders everything before the LAST assistant turn plus that turn's
  prefix: the generation/evaluation prompt. Earlier assistant turns stay in as context.

Conversations use LLaVA's roles (``human``/``gpt``); ``<image>`` placeholders pass through as
text (the tokenizer step expands them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. The assistant "
    "gives helpful, detailed, and polite answers to the user's questions."
)
CHATML_SYSTEM = "You are a helpful assistant."
TEMPLATES = ("vicuna_v1", "chatml", "tokenizer")

# A message's content in the exported templates: a string as it is, or transformers' list form
# (``{"type": "image"}``, ``{"type": "video"}``, ``{"type": "text", "text": ...}``) in order, each
# medium as its placeholder and a newline, as the records write ``<image>\n`` before the text.
CONTENT_JINJA = (
    "{% macro content(c) %}"
    "{% if c is string %}{{ c }}"
    "{% else %}{% for item in c %}"
    "{% if item['type'] == 'image' %}{{ '<image>\\n' }}"
    "{% elif item['type'] == 'video' %}{{ '<video>\\n' }}"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}"
    "{% endif %}{% endfor %}{% endif %}"
    "{% endmacro %}"
)
# The Jinja template shipped with our tokenizer (ChatML with Qwen's default system message).
CHATML_JINJA = (
    CONTENT_JINJA + "{% if messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\n" + CHATML_SYSTEM + "<|im_end|>\\n' }}"
    "{% endif %}"
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + content(message['content']) + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# The Vicuna template as Jinja (exports ship it): the text ``_vicuna`` renders, bos left to the
# tokenizer step (the export's processor adds it).
VICUNA_JINJA = (
    CONTENT_JINJA + '{% set ns = namespace(system="' + VICUNA_SYSTEM + '") %}'
    "{% set msgs = messages %}"
    "{% if messages and messages[0]['role'] == 'system' %}"
    "{% set ns.system = content(messages[0]['content']) %}{% set msgs = messages[1:] %}"
    "{% endif %}"
    "{{ ns.system + ' ' }}"
    "{% for message in msgs %}"
    "{% if message['role'] == 'user' %}{{ 'USER: ' + content(message['content']) + ' ASSISTANT:' }}"
    "{% else %}{{ ' ' + content(message['content']) + eos_token }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt and msgs and msgs[-1]['role'] == 'assistant' %}"
    "{{ 'ASSISTANT:' }}{% endif %}"
)
_ROLES = {"human": "user", "gpt": "assistant", "system": "system"}


@dataclasses.dataclass(frozen=True)
class Rendered:
    """A templated conversation: text pieces in order, and whether to prepend bos."""

    segments: tuple[tuple[str, bool], ...]  # (text, is_target)
    bos: bool

    @property
    def text(self) -> str:
        return "".join(text for text, _ in self.segments)


def render(
    conversations: Sequence[dict],
    template: str,
    tokenizer=None,
    *,
    prompt_only: bool = False,
) -> Rendered:
    """Template ``[{from, value}, ...]``; ``tokenizer`` is needed for eos text / own template."""
    turns = [(t["from"], t["value"]) for t in conversations]
    if prompt_only:
        last = max((i for i, (who, _) in enumerate(turns) if who == "gpt"), default=len(turns))
        turns = turns[:last]
    if template == "vicuna_v1":
        return _vicuna(turns, _token_text(tokenizer, "eos_token", "</s>"), prompt_only)
    if template == "chatml":
        return _chatml(turns, prompt_only)
    if template == "tokenizer":
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            raise ValueError("chat_template='tokenizer' needs a tokenizer with a chat_template")
        return _own_template(turns, tokenizer, prompt_only)
    raise ValueError(f"unknown chat template {template!r}; expected one of {TEMPLATES}")


def _token_text(tokenizer, name: str, default: str) -> str:
    value = getattr(tokenizer, name, None) if tokenizer is not None else None
    return value or default


def _vicuna(turns, eos: str, prompt_only: bool) -> Rendered:
    system = VICUNA_SYSTEM
    if turns and turns[0][0] == "system":
        system, turns = turns[0][1], turns[1:]
    segs: list[tuple[str, bool]] = []
    text = system + " "
    for who, value in turns:
        if who == "human":
            text += f"USER: {value} ASSISTANT:"
        else:
            segs.append((text, False))
            segs.append((f" {value}{eos}", True))
            text = ""
    if prompt_only and not text.endswith("ASSISTANT:"):
        text += "ASSISTANT:"
    if text:
        segs.append((text, False))
    return Rendered(tuple(segs), bos=True)


def _chatml(turns, prompt_only: bool) -> Rendered:
    segs: list[tuple[str, bool]] = []
    has_system = bool(turns) and turns[0][0] == "system"
    text = "" if has_system else f"<|im_start|>system\n{CHATML_SYSTEM}<|im_end|>\n"
    for who, value in turns:
        role = _ROLES[who]
        if role == "assistant":
            segs.append((text + "<|im_start|>assistant\n", False))
            segs.append((f"{value}<|im_end|>", True))
            text = "\n"
        else:
            text += f"<|im_start|>{role}\n{value}<|im_end|>\n"
    if prompt_only:
        text += "<|im_start|>assistant\n"
    if text:
        segs.append((text, False))
    return Rendered(tuple(segs), bos=False)


def _own_template(turns, tokenizer, prompt_only: bool) -> Rendered:
    messages = [{"role": _ROLES[who], "content": value} for who, value in turns]

    def show(msgs, gen: bool) -> str:
        return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen)

    segs: list[tuple[str, bool]] = []
    done = ""  # text already assigned to segments
    for k, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prefix, full = show(messages[:k], True), show(messages[: k + 1], False)
        if not (prefix.startswith(done) and full.startswith(prefix)):
            raise ValueError("the tokenizer's chat_template does not render prefixes stably")
        target = full[len(prefix) :]
        stripped = target.rstrip()
        segs.append((prefix[len(done) :], False))
        segs.append((stripped, True))
        segs.append((target[len(stripped) :], False))
        done = full
    rest = show(messages, prompt_only)[len(done) :] if messages else show([], prompt_only)
    segs.append((rest, False))
    return Rendered(tuple((t, is_t) for t, is_t in segs if t), bos=False)
