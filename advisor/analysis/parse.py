"""Parsing source with libcst for analysis: the same tree, less overhead.

Every node libcst's parser builds runs ``CSTNode._validate`` from its ``__post_init__``. Those
checks guard trees that code builds by hand; the parser only builds valid ones (libcst's own
comment says as much); profiled on `threading.py` they are a quarter of the parse. :func:`parse`
skips them for the nodes it builds, in the calling thread only: nodes built anywhere else, in
any thread, are validated as before.
"""

from __future__ import annotations

import os
import threading

import libcst as cst
from libcst._nodes.base import CSTNode

_STATE = threading.local()
_VALIDATE = CSTNode.__post_init__


def _post_init(self: CSTNode) -> None:
    if not getattr(_STATE, "trusted", False):
        self._validate()


def install() -> bool:
    """Let :func:`parse` skip node validation (idempotent). ``ADVISOR_VALIDATE_PARSE=1`` keeps it."""
    if os.environ.get("ADVISOR_VALIDATE_PARSE", "0") == "1":
        CSTNode.__post_init__ = _VALIDATE
        return False
    CSTNode.__post_init__ = _post_init
    return True


def parse(source: str) -> cst.Module:
    """``libcst.parse_module(source)``, without re-validating what the parser built."""
    _STATE.trusted = True
    try:
        return cst.parse_module(source)
    finally:
        _STATE.trusted = False


install()
