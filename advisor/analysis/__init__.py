"""Parsing and the threading model. Never imports torch or transformers."""

from . import walk
from .extract import build_model
from .model import ModuleModel, Span

walk.install()

__all__ = ["ModuleModel", "Span", "build_model"]
