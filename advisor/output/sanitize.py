"""Make untrusted text (analysed code, model output) safe to print on a terminal."""

from __future__ import annotations

import re

_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def clean(text: str) -> str:
    """Drop ANSI escape sequences, C0/C1 control characters (tabs and newlines kept) and
    bidirectional overrides."""
    return _CONTROL.sub("", _ANSI.sub("", text))
