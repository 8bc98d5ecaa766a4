"""Helpers for the per-rule corpus sources: each ``thrNNN.py`` here writes ``../thrNNN_<name>.jsonl``."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent


def ex(ident, code, explanation, fix=None, fixed=None, notes="", missed=False):
    """One example. ``fixed`` is the corrected code, or ``fix`` lists (old, new) text edits
    applied to ``code`` (each ``old`` must occur)."""
    code = textwrap.dedent(code).strip("\n") + "\n"
    if fixed is not None:
        fixed = textwrap.dedent(fixed).strip("\n") + "\n"
    else:
        fixed = code
        for old, new in fix:
            old, new = old.strip("\n"), new.strip("\n")
            if old not in fixed:
                raise ValueError(f"{ident}: {old!r} not in code")
            fixed = fixed.replace(old, new)
    explanation = " ".join(textwrap.dedent(explanation).split())
    return {"id": ident, "code": code, "explanation": explanation, "fixed": fixed, "notes": notes,
            "missed": missed}


def write(rule, name, examples):
    ids = [e["id"] for e in examples]
    assert len(ids) == len(set(ids)), "duplicate ids"
    stem = f"{rule.lower()}_{name.replace('-', '_')}"
    missed = [e for e in examples if e["missed"]]
    _write(OUT / f"{stem}.jsonl", rule, [e for e in examples if not e["missed"]])
    stale = OUT / "missed" / f"{stem}.jsonl"
    if missed:
        (OUT / "missed").mkdir(exist_ok=True)
        _write(stale, rule, missed)
    elif stale.exists():
        stale.unlink()


def _write(path, rule, examples):
    with open(path, "w", encoding="utf-8") as fh:
        for e in examples:
            row = {"id": e["id"], "rule": rule, "code": e["code"], "explanation": e["explanation"],
                   "fixed": e["fixed"], "notes": e["notes"]}
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{path.name}: {len(examples)} examples")
