"""Prompt rendering shared by advice (inference) and fine-tuning (training targets).

The templates are plain files in ``prompts/`` (``ADVISOR_PROMPTS`` overrides the folder).
Inference: ``advice_messages(finding, source)`` -> chat messages -> ``chat_prompt``.
Training: the same messages plus ``answer_text(explanation, fixed_block)`` as the target,
or ``training_pair`` for both as strings. ``parse_answer`` reads an answer back.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from string import Template

from ..output.sanitize import clean
from .blocks import Block, corresponding_block, enclosing_block

DOC_SECTIONS = ("Why is this bad?", "Use instead")
"""Sections of a rule's documentation that go into the prompt."""


def prompts_dir() -> Path:
    env = os.environ.get("ADVISOR_PROMPTS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "prompts"


@lru_cache(maxsize=None)
def _read(directory: str, name: str) -> str:
    return (Path(directory) / name).read_text(encoding="utf-8")


def template(name: str) -> Template:
    """One template file (``system.txt``, ``advice.txt``, ``answer.txt``)."""
    return Template(_read(str(prompts_dir()), name))


def system_prompt() -> str:
    return template("system.txt").template.strip()


def rule_documentation(code: str) -> str:
    """The prompt's excerpt of a rule's documentation (``DOC_SECTIONS``)."""
    from ..rules import get_rule

    rule = get_rule(code)
    if rule is None:
        return ""
    doc = rule.documentation()
    parts = re.split(r"^## +", doc, flags=re.M)
    keep = []
    for part in parts:
        title, _, body = part.partition("\n")
        if title.strip() in DOC_SECTIONS:
            keep.append(f"{title.strip()}\n{body.strip()}")
    return "\n\n".join(keep) if keep else doc.strip()


PROMPT_VERSION = 1
"""Bump when rendering changes in a way the templates and rule files do not show."""


def _rule_file(code: str) -> Path | None:
    from .. import rules

    folder = Path(rules.__file__).parent
    found = sorted(folder.glob(f"{code.lower()}_*.py"))
    return found[0] if found else None


def prompt_identity(finding, block: Block) -> dict:
    """Everything ``advice_messages`` renders from, without importing the rules (so a
    cached run stays cheap): template texts, the rule's module source, the finding and the
    block. Equal identities render equal messages."""
    import hashlib

    rule_file = _rule_file(finding.code)
    folder = str(prompts_dir())
    return {
        "v": PROMPT_VERSION,
        "templates": hashlib.sha256((_read(folder, "system.txt") + "\0" + _read(folder, "advice.txt")).encode()).hexdigest(),
        "rule": hashlib.sha256(rule_file.read_bytes()).hexdigest() if rule_file else None,
        "finding": [finding.code, finding.name, finding.path, finding.span.line, finding.message, finding.help],
        "block": [block.start, block.end, block.kind, block.name, block.text],
    }


def finding_block(finding, source: str) -> Block | None:
    """The block a suggestion for ``finding`` replaces (None if the source does not parse)."""
    return enclosing_block(source, finding.span.line, finding.span.end_line)


def advice_messages(finding, source: str, block: Block | None = None) -> list[dict[str, str]]:
    """Chat messages (system + user) asking for advice on ``finding`` in ``source``.

    ``finding`` is an ``advisor.rules.Finding`` (code, name, path, span, message, help).
    Raises ValueError when no block can be found (source does not parse)."""
    from ..rules import get_rule

    block = block or finding_block(finding, source)
    if block is None:
        raise ValueError(f"{finding.path}: no enclosing block for line {finding.span.line}")
    rule = get_rule(finding.code)
    user = template("advice.txt").substitute(
        code=finding.code,
        name=finding.name,
        summary=rule.summary if rule else "",
        documentation=rule_documentation(finding.code),
        path=finding.path,
        line=finding.span.line,
        message=finding.message,
        help=finding.help,
        block_kind="function" if block.kind == "function" else "statements",
        block_name=block.name,
        start=block.start,
        end=block.end,
        numbered_code=block.numbered(),
    )
    return [{"role": "system", "content": system_prompt()}, {"role": "user", "content": user.strip()}]


def answer_text(explanation: str, code: str) -> str:
    """The answer the model is trained to give: explanation, then ``code`` (the replacement
    block, dedented) in one fenced block. ``parse_answer(answer_text(e, c))`` gives back
    ``(e, c)`` up to surrounding whitespace."""
    return template("answer.txt").substitute(explanation=explanation.strip(), code=code.strip("\n")).strip() + "\n"


def chat_prompt(tokenizer, messages: list[dict[str, str]]) -> str:
    """The prompt text the model continues (chat template + generation prompt)."""
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def shared_prefix(prompt: str) -> str:
    """The leading part of a rendered advice prompt that depends on the rule only (system
    prompt, rule documentation): equal for every finding of a rule, so generation computes it
    once (``Request.prefix``). Empty when the prompt does not have the advice template's shape."""
    cut = prompt.find("\n\nFinding: ")
    return prompt[: cut + 2] if cut >= 0 else ""


def training_pair(tokenizer, finding, source: str, explanation: str, fixed_source: str) -> tuple[str, str]:
    """``(prompt, answer)`` strings for supervised training: ``prompt`` is exactly what
    inference feeds the model; ``answer`` is the target (loss goes on it only; append the
    tokenizer's end-of-turn token). ``fixed_source`` is the corrected version of
    ``source``; the block matching the finding's block is cut out of it."""
    block = finding_block(finding, source)
    messages = advice_messages(finding, source, block)
    fixed = corresponding_block(fixed_source, block)
    return chat_prompt(tokenizer, messages), answer_text(explanation, fixed)


@dataclass(frozen=True)
class Answer:
    explanation: str
    code: str | None


_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*([\w+.-]*)[ \t]*$", re.M)
_NUMBERED = re.compile(r"^\s*\d+\s?[|:] ?")


def parse_answer(text: str) -> Answer:
    """Split a model answer into explanation and code. Tolerates a missing language tag, a
    missing closing fence (truncated output), line-number prefixes copied from the prompt,
    and terminal control sequences (removed)."""
    text = clean(text).replace("\r\n", "\n")
    fences = list(_FENCE.finditer(text))
    if not fences:
        return Answer(_tidy(text), None)
    opening = fences[0]
    closing = next((m for m in fences[1:] if m.group(1)[0] == opening.group(1)[0] and not m.group(2)), None)
    code = text[opening.end() + 1 : closing.start() if closing else len(text)]
    explanation = _tidy(text[: opening.start()])
    if not explanation and closing:
        explanation = _tidy(text[closing.end() :])
    lines = code.rstrip("\n").split("\n")
    filled = [ln for ln in lines if ln.strip()]
    if filled and all(_NUMBERED.match(ln) for ln in filled):
        lines = [_NUMBERED.sub("", ln, count=1) for ln in lines]
    code = "\n".join(lines).strip("\n")
    return Answer(explanation, code or None)


def _tidy(text: str) -> str:
    text = re.sub(r"[ \t]+\n", "\n", text.strip())
    return re.sub(r"\n{3,}", "\n\n", text)
