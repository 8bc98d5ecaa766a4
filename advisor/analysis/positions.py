"""Source positions, computed only when a finding needs one."""

from __future__ import annotations

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from .model import Span


class Positions:
    """Maps CST nodes to spans. Resolving positions costs about as much as parsing,
    so it happens on the first request, i.e. only for files with findings."""

    def __init__(self, module: cst.Module) -> None:
        self.module = module
        self._ranges = None

    def span(self, node: cst.CSTNode) -> Span:
        if self._ranges is None:
            self._ranges = MetadataWrapper(self.module, unsafe_skip_copy=True).resolve(PositionProvider)
        rng = self._ranges[node]
        return Span(rng.start.line, rng.start.column, rng.end.line, rng.end.column)
