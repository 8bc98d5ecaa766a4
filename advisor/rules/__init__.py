"""The rule registry: every ``thrNNN_*.py`` module in this package defines one rule."""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache

from .base import Finding, Fix, Edit, Rule, RuleContext, iter_rule_classes

__all__ = ["Edit", "Finding", "Fix", "Rule", "RuleContext", "all_rules", "get_rule", "select_rules"]


@lru_cache(maxsize=1)
def all_rules() -> tuple[Rule, ...]:
    rules: list[Rule] = []
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("thr"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        rules.extend(cls() for cls in iter_rule_classes(module))
    codes = [r.code for r in rules]
    dupes = {c for c in codes if codes.count(c) > 1}
    if dupes:
        raise RuntimeError(f"duplicate rule codes: {sorted(dupes)}")
    return tuple(sorted(rules, key=lambda r: r.code))


def get_rule(code: str) -> Rule | None:
    code = code.upper()
    for rule in all_rules():
        if rule.code == code or rule.name == code.lower():
            return rule
    return None


def matches(code: str, patterns: tuple[str, ...] | list[str]) -> bool:
    return any(code.startswith(p.upper()) for p in patterns if p)


def select_rules(select: tuple[str, ...] | list[str], ignore: tuple[str, ...] | list[str]) -> tuple[Rule, ...]:
    return tuple(
        r for r in all_rules() if (not select or matches(r.code, select)) and not matches(r.code, ignore)
    )
