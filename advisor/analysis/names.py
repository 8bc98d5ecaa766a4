"""Name patterns shared by the model builder and the engine's prefilter (imports no libcst)."""

from __future__ import annotations

import re

LOCKISH = re.compile(r"(^|_)(r?lock|mutex|mtx|cv|cond(ition)?|sem(aphore)?)($|_)|(?<![bc])lock$", re.I)
"""Names taken for locks (``block``/``clock`` are not)."""

EXECUTORISH = re.compile(r"(executor|pool|^ex$|^exe$|^tpe$)", re.I)
"""Names taken for executors when their type is unknown (``pool.submit``)."""
