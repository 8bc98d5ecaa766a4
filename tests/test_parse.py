"""``analysis.parse.parse`` builds the same tree as libcst and skips validation only where it should."""

from __future__ import annotations

import sysconfig
import threading
from pathlib import Path

import libcst as cst
import pytest

from advisor.analysis import parse as parse_mod

STDLIB = Path(sysconfig.get_paths()["stdlib"])


@pytest.mark.parametrize("name", ["threading.py", "asyncio/base_events.py", "dataclasses.py", "zipfile.py"])
def test_same_tree_as_libcst(name):
    source = (STDLIB / name).read_text(encoding="utf-8")
    ours = parse_mod.parse(source)
    theirs = cst.parse_module(source)
    assert ours.deep_equals(theirs)
    assert ours.code == source


def test_nodes_built_by_hand_are_still_validated_after_a_parse():
    parse_mod.parse("x = 1\n")
    with pytest.raises(cst.CSTValidationError):
        cst.Name("not a name")


def test_skipping_is_per_thread():
    """While one thread parses, nodes another thread builds are validated."""
    errors: list[BaseException] = []

    def build() -> None:
        try:
            cst.Name("not a name")
        except cst.CSTValidationError as exc:
            errors.append(exc)

    parse_mod._STATE.trusted = True
    try:
        cst.Name("not a name")  # this thread is trusted: no check
        other = threading.Thread(target=build)
        other.start()
        other.join()
    finally:
        parse_mod._STATE.trusted = False
    assert len(errors) == 1


def test_parse_errors_still_raise():
    with pytest.raises(cst.ParserSyntaxError):
        parse_mod.parse("def f(:\n")
    with pytest.raises(cst.CSTValidationError):
        cst.Name("")


ODD_LAYOUT = (
    "# header\r\nimport threading as t\r\n\r\nclass A:\r\n    def f(self, x=(1,\r\n            2)):\r\n"
    "        with self.lock:  # c\r\n            return [y for y in x\n                    if y]\r\n"
    'x = """a\rb\nc"""; y = (\\\n  1)\n@dec\nasync def g(): await h()\n'
)


@pytest.mark.parametrize("name", ["threading.py", "asyncio/base_events.py", "dataclasses.py", "zipfile.py", None])
def test_positions_are_libcst_positions(name):
    """The lean position pass gives every node exactly ``PositionProvider``'s range
    (mixed newlines, continuations, decorators and comments included)."""
    from libcst.metadata import MetadataWrapper, PositionProvider

    from advisor.analysis.positions import node_spans

    source = (STDLIB / name).read_text(encoding="utf-8") if name else ODD_LAYOUT
    module = parse_mod.parse(source)
    ours = node_spans(module)
    theirs = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    assert len(ours) == len(theirs) > 20
    for node, rng in theirs.items():
        assert ours[node] == (rng.start.line, rng.start.column, rng.end.line, rng.end.column), type(node).__name__
