"""Parsing and the threading model. Never imports torch or transformers."""

from .model import ModuleModel, Span


def __getattr__(name: str):
    if name == "build_model":
        from .extract import build_model

        return build_model
    raise AttributeError(name)

__all__ = ["ModuleModel", "Span", "build_model"]
