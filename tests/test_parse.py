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
