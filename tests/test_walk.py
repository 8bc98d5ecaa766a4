"""The fast traversal must call exactly what libcst's own ``visit`` calls, in the same order."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import libcst as cst
import pytest

from advisor.analysis import walk

STDLIB = Path(sysconfig.get_paths()["stdlib"])
SAMPLES = ["threading.py", "asyncio/base_events.py", "dataclasses.py", "string.py", "re/_parser.py"]
EXTRA = '''
from __future__ import annotations
from . import (a as b, c)
import x.y as z
x: int = 1
def f(a, /, b: int = 2, *args, c, d=3, **kw) -> "T":
    global g
    y = lambda q, *r: (yield q)
    print(f"{a!r:>{b}} {c=}", *args, **kw)
    with open(a) as h, lock:
        pass
    async def inner():
        async with m as n:
            await n
        async for i in n:
            pass
    return [i async for i in y if i] if a else {k: v for k, v in kw.items()}
@decorator(1)
class C(B, metaclass=M):
    attr: list[int]
    def m(self):
        nonlocal_x = 1
        try:
            del self.a[1:2:3], self.b
        except* (E, F) as e:
            raise X from e
        else:
            assert a, "m"
        finally:
            x += 1; y -= 2
match cmd:
    case [1, *rest] if rest:
        pass
    case {"k": v, **kw}:
        pass
    case P(x=1) | None as w:
        pass
    case _:
        pass
while (n := n - 1) > 0 and not done or ~x:
    print(-n if n is not None else n ** 2 @ m)
else:
    pass
type_ = {1, 2, *s}
'''


def _modules() -> list[cst.Module]:
    mods = [cst.parse_module(EXTRA)]
    for name in SAMPLES:
        path = STDLIB / name
        if path.exists():
            mods.append(cst.parse_module(path.read_text(encoding="utf-8")))
    return mods


MODULES = _modules()


class Recorder(cst.CSTVisitor):
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def on_visit(self, node):
        self.events.append(("visit", id(node)))
        return not isinstance(node, cst.Lambda)

    def on_leave(self, original_node):
        self.events.append(("leave", id(original_node)))

    def on_visit_attribute(self, node, attribute):
        self.events.append(("visit_attr", id(node), attribute))

    def on_leave_attribute(self, original_node, attribute):
        self.events.append(("leave_attr", id(original_node), attribute))


def _typed_recorder(skip_whitespace: bool) -> type:
    """A visitor with ``visit_X``/``leave_X`` methods for every node class (optionally no
    whitespace classes), returning False under FunctionDef to test pruning."""
    names = {c.__name__ for c in walk._WHITESPACE | walk._TRIVIA} if skip_whitespace else set()
    ns: dict = {"__init__": lambda self: setattr(self, "events", [])}
    for name in dir(cst):
        obj = getattr(cst, name)
        if not (isinstance(obj, type) and issubclass(obj, cst.CSTNode)) or name in names:
            continue
        ns[f"visit_{name}"] = (lambda n: lambda self, node: (self.events.append(("v", n, id(node))), n != "ClassDef" or False)[1])(name)
        ns[f"leave_{name}"] = (lambda n: lambda self, node: self.events.append(("l", n, id(node))))(name)
    return type("Typed", (cst.CSTVisitor,), ns)


@pytest.mark.parametrize("index", range(len(MODULES)))
@pytest.mark.parametrize("make", [Recorder, _typed_recorder(True), _typed_recorder(False)], ids=["generic", "typed", "typed-all"])
def test_same_events_as_libcst(index, make) -> None:
    module = MODULES[index]
    expected = make()
    walk.original_visit(module, expected)
    got = make()
    module.visit(got)
    assert len(got.events) == len(expected.events)
    assert got.events == expected.events


def test_children_match_libcst() -> None:
    all_nodes = Recorder()
    walk.original_visit(MODULES[0], all_nodes)
    collector: list[cst.CSTNode] = []

    class Collect(cst.CSTVisitor):
        def on_visit(self, node):
            collector.append(node)
            return True

    MODULES[0].visit(Collect())
    assert collector
    for node in collector:
        expected = list(walk._ORIGINAL_CHILDREN.fget(node))
        assert [id(c) for c in node.children] == [id(c) for c in expected]


def test_visit_returns_node_and_transformers_still_rebuild() -> None:
    module = cst.parse_module("x = 1\n")
    assert module.visit(cst.CSTVisitor()) is module

    class Rename(cst.CSTTransformer):
        def leave_Name(self, original_node, updated_node):
            return updated_node.with_changes(value="y")

    assert module.visit(Rename()).code == "y = 1\n"


def test_every_node_class_has_a_known_child_order() -> None:
    unknown = []
    for name in dir(cst):
        obj = getattr(cst, name)
        if isinstance(obj, type) and issubclass(obj, cst.CSTNode) and not getattr(obj, "__abstractmethods__", None):
            if "_visit_and_replace_children" in {k for c in obj.__mro__ for k in vars(c)} and walk.child_fields(obj) is None:
                unknown.append(name)
    assert unknown == []
