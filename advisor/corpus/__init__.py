"""The threading corpus: loading, validation, augmentation and mining."""

from .examples import CorpusError, Example, LoadResult, load_corpus, load_jsonl

__all__ = ["CorpusError", "Example", "LoadResult", "load_corpus", "load_jsonl"]
