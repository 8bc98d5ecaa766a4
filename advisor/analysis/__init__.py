"""Parsing and the threading model. Never imports torch or transformers."""

from .extract import build_model
from .model import ModuleModel, Span

__all__ = ["ModuleModel", "Span", "build_model"]
