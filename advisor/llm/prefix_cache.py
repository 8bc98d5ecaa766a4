"""Key/value caches of shared prompt prefixes, kept on disk between runs.

A prefix (system prompt + one rule's documentation) is the same in every run for a given
model, adapter and prompt templates, so a later run with new findings of that rule loads it
(a few milliseconds) instead of computing it (about half a second on 2 CPU cores). Files are
safetensors, written atomically; a file that does not load is recomputed. Only the ``keep``
most recently used files are kept (about 12 MB each for SmolLM2-135M).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

FORMAT = 1


class PrefixStore:
    def __init__(self, directory: str | os.PathLike, identity: dict, keep: int = 32) -> None:
        self.directory = Path(directory)
        self.identity = {"format": FORMAT, **identity}
        self.keep = keep

    def path(self, prefix: tuple[int, ...]) -> Path:
        digest = hashlib.sha256(json.dumps(self.identity, sort_keys=True).encode())
        digest.update(b"\0" + ",".join(map(str, prefix)).encode())
        return self.directory / f"{digest.hexdigest()}.safetensors"

    def get(self, prefix: tuple[int, ...], layers: int) -> list[tuple[object, object]] | None:
        """Per layer ``(keys, values)``, or None when absent or unreadable."""
        from safetensors.torch import load_file

        path = self.path(prefix)
        try:
            tensors = load_file(str(path))
            kv = [(tensors[f"k{i}"], tensors[f"v{i}"]) for i in range(layers)]
        except Exception:  # missing, truncated or foreign file: compute it again
            return None
        if any(k.shape[2] != len(prefix) or v.shape[2] != len(prefix) for k, v in kv):
            return None
        try:
            os.utime(path)
        except OSError:
            pass
        return kv

    def put(self, prefix: tuple[int, ...], kv: list[tuple[object, object]]) -> None:
        from safetensors.torch import save

        from .loader import _atomic_write

        path = self.path(prefix)
        tensors = {}
        for i, (k, v) in enumerate(kv):
            tensors[f"k{i}"] = k.contiguous()
            tensors[f"v{i}"] = v.contiguous()
        try:
            _atomic_write(path, save(tensors))
            self._prune()
        except OSError:
            pass

    def _prune(self) -> None:
        files = []
        for p in self.directory.glob("*.safetensors"):
            try:
                files.append((p.stat().st_mtime, p))
            except OSError:
                pass
        for _, p in sorted(files, reverse=True)[self.keep :]:
            try:
                p.unlink()
            except OSError:
                pass
