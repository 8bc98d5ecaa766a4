"""Build a :class:`ModuleModel` from a libcst module in one traversal.

Names are resolved through the module's imports by a light scope tracker (module,
class and function scopes, ``global``/``nonlocal``), which costs a fraction of
libcst's QualifiedNameProvider; positions are resolved lazily (see ``positions``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import libcst as cst

from . import walk
from .names import EXECUTORISH, LOCKISH
from .syntax import ends_with
from .model import (
    EXECUTOR_KINDS,
    LOCK_KINDS,
    MODULE,
    PRIMITIVE_TYPES,
    THREAD_TYPES,
    Access,
    Call,
    ClassInfo,
    FunctionInfo,
    HeldLock,
    LockAcquire,
    ModuleModel,
    Primitive,
    Spawn,
)

walk.install()

MUTATORS = frozenset(
    {
        "append", "extend", "insert", "pop", "remove", "clear", "update", "setdefault",
        "add", "discard", "popitem", "appendleft", "popleft", "extendleft", "sort", "reverse",
        "__setitem__", "__delitem__",
    }
)


MAPPINGS = frozenset({"dict", "mapping", "mutablemapping", "defaultdict", "ordereddict", "weakvaluedictionary"})
SEQUENCES = frozenset({"list", "sequence", "mutablesequence", "set", "frozenset", "deque", "iterable", "collection"})


def dotted(expr: cst.BaseExpression) -> str | None:
    """``a.b.c`` for a Name/Attribute chain, else None."""
    parts: list[str] = []
    while isinstance(expr, cst.Attribute):
        parts.append(expr.attr.value)
        expr = expr.value
    if isinstance(expr, cst.Name):
        parts.append(expr.value)
        return ".".join(reversed(parts))
    return None


def _kwarg(call: cst.Call, name: str) -> cst.Arg | None:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == name:
            return arg
    return None


def _positional(call: cst.Call, index: int) -> cst.Arg | None:
    i = 0
    for arg in call.args:
        if arg.keyword is not None or arg.star:
            break
        if i == index:
            return arg
        i += 1
    return None


def is_false_literal(expr: cst.BaseExpression) -> bool:
    return (isinstance(expr, cst.Name) and expr.value in ("False", "None")) or (
        isinstance(expr, cst.Integer) and expr.value == "0"
    )


_LEAVES = (cst.Return, cst.Raise, cst.Continue, cst.Break)


class _LocalsCollector(cst.CSTVisitor):
    """Names bound in one function scope (not in nested scopes)."""

    def __init__(self) -> None:
        self.assigned: set[str] = set()
        self.globals: set[str] = set()
        self.nonlocals: set[str] = set()

    def _bind(self, target: cst.BaseExpression) -> None:
        if isinstance(target, cst.Name):
            self.assigned.add(target.value)
        elif isinstance(target, (cst.Tuple, cst.List)):
            for el in target.elements:
                self._bind(el.value)
        elif isinstance(target, cst.StarredElement):
            self._bind(target.value)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        self.assigned.add(node.name.value)
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        self.assigned.add(node.name.value)
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False

    def visit_ListComp(self, node: cst.ListComp) -> bool:
        return False

    def visit_SetComp(self, node: cst.SetComp) -> bool:
        return False

    def visit_DictComp(self, node: cst.DictComp) -> bool:
        return False

    def visit_GeneratorExp(self, node: cst.GeneratorExp) -> bool:
        return False

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        self._bind(node.target)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self._bind(node.target)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._bind(node.target)

    def visit_For(self, node: cst.For) -> None:
        self._bind(node.target)

    def visit_AsName(self, node: cst.AsName) -> None:
        self._bind(node.name)

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        self._bind(node.target)

    def visit_ImportAlias(self, node: cst.ImportAlias) -> None:
        if node.asname is None:
            name = dotted(node.name)
            if name:
                self.assigned.add(name.split(".")[0])

    def visit_Global(self, node: cst.Global) -> None:
        self.globals.update(n.name.value for n in node.names)

    def visit_Nonlocal(self, node: cst.Nonlocal) -> None:
        self.nonlocals.update(n.name.value for n in node.names)


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _params(params: cst.Parameters) -> tuple[str, ...]:
    names = [p.name.value for p in (*params.posonly_params, *params.params)]
    if isinstance(params.star_arg, cst.Param):
        names.append(params.star_arg.name.value)
    names.extend(p.name.value for p in params.kwonly_params)
    if params.star_kwarg is not None:
        names.append(params.star_kwarg.name.value)
    return tuple(names)


@dataclass
class _Frame:
    info: FunctionInfo
    held: list[HeldLock] = field(default_factory=list)
    loop_depth: int = 0
    while_depth: int = 0
    imports: dict[str, str] = field(default_factory=dict)
    nonlocals: frozenset[str] = frozenset()
    bound: frozenset[str] = frozenset()
    """Names assigned in the body (not parameters): candidates for nested functions."""


@dataclass
class _PendingCall:
    call: Call
    candidates: list[tuple[str, bool]]  # (qualname-or-"cls:Name.meth", same_instance)


class ModelBuilder(cst.CSTVisitor):
    def __init__(self, module: cst.Module, path: str) -> None:
        self.model = ModuleModel(path=path, module=module)
        self.module_names: set[str] = set()
        self.frames: list[_Frame] = []
        self.class_stack: list[ClassInfo] = []
        self.block_marks: list[int] = []
        self.blocks: list[tuple[cst.IndentedBlock, list[HeldLock]]] = []
        self.stmt: cst.SimpleStatementLine | None = None
        self.targets: set[int] = set()
        self.defaultdicts: set[str] = set()
        """Refs bound to a ``defaultdict``: reading ``d[k]`` may insert ``k``."""
        self.stored: set[int] = set()
        """Subscripts already recorded as stored to or deleted."""
        self.pending: list[_PendingCall] = []
        self.pending_for: list[tuple[str, str]] = []
        self.thread_lists: set[str] = set()
        self.call_info: dict[int, Call] = {}
        self.lambda_names: dict[int, str] = {}
        self.bound: dict[int, tuple[str, bool]] = {}
        self.target_info: dict[int, list[str]] = {}
        self.arg_refs: dict[int, str | None] = {}
        self.callee_nodes: set[int] = set()
        self.param_defaults: dict[str, dict[str, cst.BaseExpression]] = {}
        self.callable_attrs: dict[str, list[list[str]]] = {}
        """Attribute refs bound to a function (``self.fetch = fetch``): what calling them may run."""
        self.param_attrs: dict[tuple[str, str], list[str]] = {}
        """(function, parameter) -> attribute refs the function stores that parameter in."""
        self.elements: dict[str, tuple[str, str]] = {}
        """Refs annotated as containers of a module class: ref -> ("map" | "seq", class)."""
        self._class_frame_depth: list[int] = []
        self._with_pushed: list[int] = []
        self._collect_module_names(module)
        top = FunctionInfo(MODULE, MODULE, module)
        self.model.functions[MODULE] = top
        self.frames.append(_Frame(top))

    # -- module pre-pass --------------------------------------------------------------
    def _collect_module_names(self, module: cst.Module) -> None:
        collector = _LocalsCollector()
        for stmt in module.body:
            stmt.visit(collector)
            self._scan_imports(stmt, self.model.imports)
        self.module_names = collector.assigned
        self.module_classes = {
            stmt.name.value for stmt in module.body if isinstance(stmt, cst.ClassDef)
        }
        self.class_by_snake = {_snake(name): name for name in self.module_classes}
        self.returns: dict[str, str] = {}
        """Module function / ``Class.method`` -> the module class its return annotation names."""
        self.returned_refs: dict[str, list[str | None]] = {}
        self.returns_primitive: dict[str, Primitive] = {}
        """Function -> the primitive every one of its ``return`` statements gives (``return sem``
        where ``sem`` is a ``Semaphore`` it looked up or made)."""
        self.lock_containers: set[str] = set()
        """Refs of dicts and lists built of locks (``{d: Lock() for d in drugs}``,
        ``defaultdict(threading.Lock)``)."""
        self.element_locks: set[str] = set()
        """Locals bound to one lock of such a container: held as a ``KEYED_LOCK``."""
        self.returns_element_lock: set[str] = set()
        """Functions whose every ``return`` hands back one lock of such a container."""
        self.name_counts: dict[str, int] = {}
        """How often each name occurs in the module (definitions' own names included)."""
        for stmt in module.body:
            if isinstance(stmt, cst.FunctionDef):
                self._note_return(stmt.name.value, stmt)
            elif isinstance(stmt, cst.ClassDef) and isinstance(stmt.body, cst.IndentedBlock):
                for inner in stmt.body.body:
                    if isinstance(inner, cst.FunctionDef):
                        self._note_return(f"{stmt.name.value}.{inner.name.value}", inner)

    def _note_return(self, key: str, node: cst.FunctionDef) -> None:
        if node.returns is not None:
            cls = self._annotated_class(node.returns.annotation)
            if cls is not None:
                self.returns[key] = cls

    def _annotated_elements(self, ann: cst.BaseExpression) -> tuple[str, str] | None:
        """``Dict[str, Account]`` -> ("map", "Account"); ``list[Job]`` -> ("seq", "Job")."""
        if not isinstance(ann, cst.Subscript) or not ann.slice:
            return None
        head = (dotted(ann.value) or "").rsplit(".", 1)[-1].lower()
        kind = "map" if head in MAPPINGS else "seq" if head in SEQUENCES else None
        part = ann.slice[-1 if kind == "map" else 0].slice
        if kind is None or not isinstance(part, cst.Index):
            return None
        cls = self._annotated_class(part.value)
        return (kind, cls) if cls else None

    def _annotated_class(self, ann: cst.BaseExpression) -> str | None:
        """The module class an annotation names: ``Topic``, ``"Topic"``, ``Optional[Topic]``, ``Topic | None``."""
        if isinstance(ann, cst.SimpleString):
            text = ann.evaluated_value
            return text.strip() if isinstance(text, str) and text.strip() in self.module_classes else None
        if isinstance(ann, cst.Name):
            return ann.value if ann.value in self.module_classes else None
        if isinstance(ann, cst.Subscript) and (dotted(ann.value) or "").rsplit(".", 1)[-1] == "Optional" and len(ann.slice) == 1:
            inner = ann.slice[0].slice
            return self._annotated_class(inner.value) if isinstance(inner, cst.Index) else None
        if isinstance(ann, cst.BinaryOperation) and isinstance(ann.operator, cst.BitOr):
            for side in (ann.left, ann.right):
                if not (isinstance(side, cst.Name) and side.value == "None"):
                    return self._annotated_class(side)
        return None

    @staticmethod
    def _scan_imports(stmt: cst.CSTNode, table: dict[str, str]) -> None:
        if not isinstance(stmt, cst.SimpleStatementLine):
            if isinstance(stmt, (cst.If, cst.Try)):
                for block in _blocks(stmt):
                    for inner in block.body:
                        ModelBuilder._scan_imports(inner, table)
            return
        for small in stmt.body:
            if isinstance(small, cst.Import):
                for alias in small.names:
                    name = dotted(alias.name)
                    if not name:
                        continue
                    if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                        table[alias.asname.name.value] = name
                    else:
                        table[name.split(".")[0]] = name.split(".")[0]
            elif isinstance(small, cst.ImportFrom) and not isinstance(small.names, cst.ImportStar):
                base = dotted(small.module) if small.module is not None else ""
                if small.relative:
                    base = "." * len(small.relative) + (base or "")
                for alias in small.names:
                    name = dotted(alias.name)
                    if not name:
                        continue
                    local = name
                    if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                        local = alias.asname.name.value
                    table[local] = f"{base}.{name}" if base else name

    # -- scope helpers ----------------------------------------------------------------
    @property
    def frame(self) -> _Frame:
        return self.frames[-1]

    @property
    def fn(self) -> FunctionInfo:
        return self.frames[-1].info

    def resolve(self, expr: cst.BaseExpression) -> str | None:
        """Dotted name of ``expr`` through imports and module definitions."""
        name = dotted(expr)
        if name is None:
            return None
        head, _, rest = name.partition(".")
        for frame in reversed(self.frames):
            if head in frame.imports:
                base = frame.imports[head]
                return f"{base}.{rest}" if rest else base
            if frame.info.qualname != MODULE and head in frame.info.local_names:
                if self._local_function(frame, head):
                    return f"{frame.info.qualname}.<locals>.{name}"
                return None
        if head in self.model.imports:
            base = self.model.imports[head]
            return f"{base}.{rest}" if rest else base
        if head in self.module_names:
            return name
        return None

    @staticmethod
    def _local_function(frame: _Frame, name: str) -> bool:
        return name in frame.bound

    def self_class(self, name: str) -> str | None:
        """The class whose instance ``name`` denotes (``self``/``cls``), seen from here."""
        for frame in reversed(self.frames):
            info = frame.info
            if info.qualname == MODULE:
                return None
            if info.self_name == name:
                return info.class_name
            if name in info.local_names and not info.is_lambda:
                return None
        return None

    def ref(self, expr: cst.BaseExpression) -> str | None:
        if isinstance(expr, cst.Name):
            return self.name_ref(expr.value)
        if isinstance(expr, cst.Attribute):
            attr = expr.attr.value
            value = expr.value
            if isinstance(value, cst.Name):
                cls = self.self_class(value.value)
                if cls is not None:
                    return f"a:{cls}.{attr}"
                if value.value in self.model.classes and not self._shadowed(value.value):
                    return f"a:{value.value}.{attr}"
            base = self.ref(value)
            if base is None:
                return None
            typ = self.model.types.get(base)
            if typ is not None:
                return f"a:{typ}.{attr}"
            return f"{base}.{attr}"
        return None

    def _shadowed(self, name: str) -> bool:
        return any(
            f.info.qualname != MODULE and name in f.info.local_names for f in self.frames
        )

    def name_ref(self, name: str) -> str | None:
        for frame in reversed(self.frames):
            info = frame.info
            if info.qualname == MODULE:
                break
            if name in info.global_names:
                return f"g:{name}"
            if name in info.local_names and name not in frame.nonlocals:
                if info.self_name == name:
                    return None
                return f"l:{info.qualname}.{name}"
        if name in self.module_names and name not in self.model.imports:
            return f"g:{name}"
        return None

    # -- locks ------------------------------------------------------------------------
    def lock_of(self, expr: cst.BaseExpression) -> tuple[str, str | None] | None:
        ref = self.ref(expr)
        if ref is not None and ref in self.element_locks:
            return ref, KEYED_LOCK
        kind = self.model.primitive_kind(ref)
        if kind is not None:
            return (ref, kind) if kind in LOCK_KINDS else None
        text = dotted(expr)
        if text is None:
            return None
        last = text.rsplit(".", 1)[-1]
        if LOCKISH.search(last):
            return (ref or f"?:{text}", None)
        return None

    # -- functions --------------------------------------------------------------------
    def _enter_function(self, info: FunctionInfo, body: cst.CSTNode, params: tuple[str, ...]) -> None:
        collector = _LocalsCollector()
        body.visit(collector)
        info.local_names = frozenset(collector.assigned | set(params)) - collector.globals
        info.global_names = frozenset(collector.globals)
        info.params = params
        frame = _Frame(info, nonlocals=frozenset(collector.nonlocals), bound=frozenset(collector.assigned))
        self.model.functions[info.qualname] = info
        self.frames.append(frame)

    def _qualname(self, name: str) -> str:
        if self.class_stack and self._in_class_body():
            return f"{self._class_path()}.{name}"
        if self.fn.qualname == MODULE:
            return name
        return f"{self.fn.qualname}.<locals>.{name}"

    def _class_path(self) -> str:
        return self.class_stack[-1].name

    def _in_class_body(self) -> bool:
        return bool(self.class_stack) and self._class_frame_depth[-1] == len(self.frames)

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        name = node.name.value
        if self.fn.qualname != MODULE or (self.class_stack and self._in_class_body()):
            qual = self._qualname(name) if not self._in_class_body() else f"{self._class_path()}.{name}"
        else:
            qual = name
        bases = tuple(b for b in (self.resolve(a.value) for a in node.bases) if b)
        info = ClassInfo(qual, node, bases)
        self.model.classes[qual] = info
        if qual != name and name not in self.model.classes:
            self.model.classes.setdefault(name, info)
        self.class_stack.append(info)
        self._class_frame_depth.append(len(self.frames))

    def leave_ClassDef(self, node: cst.ClassDef) -> None:
        self.class_stack.pop()
        self._class_frame_depth.pop()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.targets.add(id(node.name))
        in_class = self._in_class_body()
        qual = self._qualname(node.name.value)
        decorators = tuple(filter(None, (dotted(d.decorator) for d in node.decorators)))
        info = FunctionInfo(
            qual,
            node.name.value,
            node,
            class_name=self.class_stack[-1].name if in_class else None,
            parent=self.fn.qualname,
            is_async=node.asynchronous is not None,
            decorators=decorators,
        )
        if in_class:
            self.class_stack[-1].methods[node.name.value] = qual
        self._enter_function(info, node.body, _params(node.params))
        self._param_types(info, node.params)

    def _param_types(self, info: FunctionInfo, params: cst.Parameters) -> None:
        """Parameters annotated with a module class or a primitive type, or named after a
        module class (``account`` for ``Account``), are assumed to hold one."""
        for param in (*params.posonly_params, *params.params, *params.kwonly_params):
            name = param.name.value
            if name == info.self_name:
                continue
            if isinstance(param.default, (cst.Name, cst.Attribute)):
                self.param_defaults.setdefault(info.qualname, {})[name] = param.default
            ref = f"l:{info.qualname}.{name}"
            if param.annotation is not None:
                elements = self._annotated_elements(param.annotation.annotation)
                if elements is not None:
                    self.elements[ref] = elements
            annotation = param.annotation.annotation if param.annotation is not None else None
            if annotation is not None:
                if isinstance(annotation, cst.SimpleString):
                    qual = annotation.evaluated_value if isinstance(annotation.evaluated_value, str) else None
                else:
                    qual = self.resolve(annotation)
                if qual is None:
                    continue
                kind = PRIMITIVE_TYPES.get(qual)
                if kind is not None:
                    self.model.primitives[ref] = Primitive(ref, kind, qual, param, info.qualname)
                elif qual in self.model.classes or qual in self.module_classes:
                    self.model.types[ref] = qual
            else:
                cls = self.class_by_snake.get(name)
                if cls is not None:
                    self.model.types[ref] = cls

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        qual = self.fn.qualname
        refs = self.returned_refs.get(qual)
        if refs and all(r == ELEMENT_LOCK or r in self.element_locks for r in refs):
            self.returns_element_lock.add(qual)
        if refs and all(r in self.model.primitives for r in refs):
            kinds = {self.model.primitives[r].kind for r in refs}
            if len(kinds) == 1:
                self.returns_primitive[qual] = self.model.primitives[refs[0]]
        self.frames.pop()

    def visit_Return(self, node: cst.Return) -> None:
        if self.frames:
            value = node.value
            ref = self.ref(value) if isinstance(value, (cst.Name, cst.Attribute)) else None
            if ref is None and value is not None and self._lock_element(value):
                ref = ELEMENT_LOCK
            self.returned_refs.setdefault(self.fn.qualname, []).append(ref)

    def visit_Lambda(self, node: cst.Lambda) -> None:
        qual = f"{self.fn.qualname}.<lambda>#{len(self.lambda_names)}"
        self.lambda_names[id(node)] = qual
        info = FunctionInfo(qual, "<lambda>", node, parent=self.fn.qualname, is_lambda=True)
        self._enter_function(info, node.body, _params(node.params))

    def leave_Lambda(self, node: cst.Lambda) -> None:
        self.frames.pop()

    # -- imports inside functions -----------------------------------------------------
    def visit_Import(self, node: cst.Import) -> None:
        if self.fn.qualname != MODULE:
            self._scan_imports(cst.SimpleStatementLine(body=[node]), self.frame.imports)

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        if self.fn.qualname != MODULE:
            self._scan_imports(cst.SimpleStatementLine(body=[node]), self.frame.imports)

    # -- statements, blocks, loops ----------------------------------------------------
    def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
        self.stmt = node

    def leave_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
        self.stmt = None

    def visit_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        self.block_marks.append(len(self.frame.held))
        self.blocks.append((node, []))

    def leave_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        mark = self.block_marks.pop()
        _, restored = self.blocks.pop()
        held = self.frame.held
        kept = held[:mark] + [h for h in held[mark:] if h.via == "with"]
        held[:] = kept + [h for h in restored if h not in kept]

    def _release(self, ref: str) -> None:
        """``ref.release()``: the lock is no longer held after it, except past a block that
        releases and leaves (``if stale: lock.release(); return``): code after that block still
        holds it."""
        held = self.frame.held
        for i in range(len(held) - 1, -1, -1):
            if held[i].ref == ref and held[i].via == "acquire":
                if self.blocks and ends_with(self.blocks[-1][0], _LEAVES) and i < self.block_marks[-1]:
                    self.blocks[-1][1].append(held[i])
                del held[i]
                return

    def _loop(self, delta: int, is_while: bool = False) -> None:
        self.frame.loop_depth += delta
        if is_while:
            self.frame.while_depth += delta

    def visit_For(self, node: cst.For) -> None:
        target = self.ref(node.target)
        source = self.ref(node.iter)
        if target and source:
            self.pending_for.append((target, source))
        if target and target not in self.model.types:
            element = self._iterated_element(node.iter)
            if element is not None:
                self.model.types[target] = element
        pair = node.target
        if isinstance(pair, (cst.Tuple, cst.List)) and len(pair.elements) == 2:
            value = self.ref(pair.elements[1].value)
            element = self._iterated_element(node.iter, items=True)
            if value and element is not None and value not in self.model.types:
                self.model.types[value] = element
        self._loop(1)

    def _iterated_element(self, expr: cst.BaseExpression, items: bool = False) -> str | None:
        """``for a in accounts.values()`` (a mapping) or ``for job in jobs`` (a sequence);
        ``items``: the value of ``for name, a in accounts.items()``. A copy (``list(...)``,
        ``sorted(...)``, ``tuple(...)``) holds the same objects."""
        if (isinstance(expr, cst.Call) and isinstance(expr.func, cst.Name) and expr.func.value in ("list", "sorted", "tuple")
                and len(expr.args) == 1 and expr.args[0].keyword is None):
            expr = expr.args[0].value
        wanted = "items" if items else "values"
        if items and not (isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and expr.func.attr.value == wanted):
            return None
        if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and expr.func.attr.value == wanted:
            found = self.elements.get(self.ref(expr.func.value) or "")
            return found[1] if found and found[0] == "map" else None
        found = self.elements.get(self.ref(expr) or "")
        return found[1] if found and found[0] == "seq" else None

    def leave_For(self, node: cst.For) -> None:
        self._loop(-1)

    def visit_While(self, node: cst.While) -> None:
        if not self._in_class_body():
            self.fn.loops.append(node)
        self._loop(1, True)

    def leave_While(self, node: cst.While) -> None:
        self._loop(-1, True)

    def visit_ListComp(self, node: cst.ListComp) -> None:
        self._loop(1)

    def leave_ListComp(self, node: cst.ListComp) -> None:
        self._loop(-1)

    visit_SetComp = visit_ListComp  # type: ignore[assignment]
    leave_SetComp = leave_ListComp  # type: ignore[assignment]
    visit_GeneratorExp = visit_ListComp  # type: ignore[assignment]
    leave_GeneratorExp = leave_ListComp  # type: ignore[assignment]
    visit_DictComp = visit_ListComp  # type: ignore[assignment]
    leave_DictComp = leave_ListComp  # type: ignore[assignment]

    # -- with -------------------------------------------------------------------------
    def visit_With(self, node: cst.With) -> None:
        pushed = 0
        for item in node.items:
            expr = item.item
            if isinstance(expr, cst.Call):
                qual = self.resolve(expr.func)
                kind = PRIMITIVE_TYPES.get(qual or "")
                if kind and item.asname is not None:
                    ref = self.ref(item.asname.name)
                    if ref:
                        self.model.primitives[ref] = Primitive(ref, kind, qual or "", expr, self.fn.qualname)
                continue
            lock = self.lock_of(expr)
            if lock is None:
                continue
            ref, kind = lock
            held = HeldLock(ref, kind, "with", expr)
            self.fn.acquires.append(
                LockAcquire(ref, kind, "with", self.fn.qualname, tuple(self.frame.held), expr)
            )
            self.frame.held.append(held)
            pushed += 1
        self._with_pushed.append(pushed)

    def leave_With(self, node: cst.With) -> None:
        pushed = self._with_pushed.pop()
        if pushed:
            del self.frame.held[-pushed:]

    # -- assignments and accesses -----------------------------------------------------
    def _record(self, ref: str | None, kind: str, node: cst.CSTNode) -> None:
        if ref is None:
            return
        self.fn.accesses.append(
            Access(ref, kind, self.fn.qualname, tuple(self.frame.held), node, self.stmt)
        )

    def _reads_ref(self, expr: cst.BaseExpression, ref: str) -> bool:
        finder = _RefFinder(self, ref)
        expr.visit(finder)
        return finder.found

    def _assign_target(self, target: cst.BaseExpression, value: cst.BaseExpression | None) -> None:
        self.targets.add(id(target))
        if isinstance(target, (cst.Tuple, cst.List)):
            for el in target.elements:
                self._assign_target(el.value, None)
            return
        if isinstance(target, cst.StarredElement):
            self._assign_target(target.value, None)
            return
        if isinstance(target, cst.Subscript):
            self.targets.add(id(target.value))
            ref = self.ref(target.value)
            rmw = ref is not None and value is not None and self._reads_ref(value, ref)
            self._record(ref, "item-rmw" if rmw else "item-write", target)
            self.stored.add(id(target))
            return
        if isinstance(target, (cst.Name, cst.Attribute)):
            ref = self.ref(target)
            if ref is None:
                return
            rmw = value is not None and self._reads_ref(value, ref)
            self._record(ref, "rmw" if rmw else "write", target)
            if value is not None:
                self._bind_value(ref, value)
                if ref.startswith("l:") and isinstance(value, (cst.Name, cst.Attribute)):
                    source = self.ref(value)  # ``alloc = self.allocator``: the same object
                    if source in self.model.types and ref not in self.model.types:
                        self.model.types[ref] = self.model.types[source]
                if ref.startswith("a:") and isinstance(value, (cst.Name, cst.Attribute)):
                    self._bind_callable(ref, value)
                    source = self.ref(value)
                    prim = self.model.primitives.get(source or "")
                    if prim is not None and ref not in self.model.primitives and source.startswith("l:"):
                        # ``self.chargers = chargers`` for a parameter annotated ``threading.Semaphore``
                        self.model.primitives[ref] = Primitive(ref, prim.kind, prim.type_name, prim.node, prim.function)
                    if source in self.model.types and ref not in self.model.types:
                        self.model.types[ref] = self.model.types[source]
                    if source in self.elements and ref not in self.elements:
                        self.elements[ref] = self.elements[source]
                element = self._element_of(value)
                if element is not None and ref not in self.model.types:
                    self.model.types[ref] = element

    def _element_of(self, value: cst.BaseExpression) -> str | None:
        """The class of ``accounts[k]`` / ``accounts.get(k)`` for a container annotated with one."""
        if isinstance(value, cst.Subscript):
            found = self.elements.get(self.ref(value.value) or "")
            return found[1] if found else None
        if isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) and value.func.attr.value in ("get", "pop"):
            found = self.elements.get(self.ref(value.func.value) or "")
            return found[1] if found and found[0] == "map" else None
        return None

    def _returned_class(self, func: cst.BaseExpression, qual: str | None) -> str | None:
        """The module class a called function or method is annotated to return."""
        if isinstance(func, cst.Name):
            return self.returns.get(qual) if qual else None
        method = self._typed_method(func)
        return self.returns.get(method) if method else None

    def _typed_method(self, func: cst.BaseExpression) -> str | None:
        """``Class.method`` for ``self.method`` or ``obj.method`` on a typed ``obj``
        (``self.catalog.get(k)``)."""
        if isinstance(func, cst.Attribute) and isinstance(func.value, (cst.Name, cst.Attribute)):
            owner = self.self_class(func.value.value) if isinstance(func.value, cst.Name) else None
            owner = owner or self.model.types.get(self.ref(func.value) or "")
            if owner is not None:
                return f"{owner.split('.<locals>.')[-1]}.{func.attr.value}"
        return None

    def _is_lock_call(self, node: cst.BaseExpression) -> bool:
        if not isinstance(node, cst.Call):
            return False
        return PRIMITIVE_TYPES.get(self.resolve(node.func) or "") in ("Lock", "RLock")

    def _builds_locks(self, value: cst.BaseExpression) -> bool:
        """``{k: Lock() for k in keys}``, ``[RLock() for _ in range(n)]``, ``{"a": Lock(), ...}``,
        ``defaultdict(threading.Lock)``."""
        if isinstance(value, cst.DictComp):
            return self._is_lock_call(value.value)
        if isinstance(value, (cst.ListComp, cst.GeneratorExp)):
            return self._is_lock_call(value.elt)
        if isinstance(value, cst.Dict) and value.elements:
            return all(isinstance(e, cst.DictElement) and self._is_lock_call(e.value) for e in value.elements)
        if isinstance(value, cst.Call) and self.resolve(value.func) == "collections.defaultdict" and value.args:
            return PRIMITIVE_TYPES.get(self.resolve(value.args[0].value) or "") in ("Lock", "RLock")
        return False

    def _lock_element(self, value: cst.BaseExpression) -> bool:
        """``locks[key]``, ``locks.get(key)`` or ``locks.setdefault(key, Lock())`` of a lock container."""
        if isinstance(value, cst.Subscript):
            return self.ref(value.value) in self.lock_containers
        if (isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute)
                and value.func.attr.value in ("get", "setdefault")):
            return self.ref(value.func.value) in self.lock_containers
        return False

    def _returns_lock_element(self, value: cst.BaseExpression) -> bool:
        """A call of a function or method that hands back one lock of a container."""
        if not isinstance(value, cst.Call):
            return False
        func = value.func
        name = self.resolve(func) if isinstance(func, cst.Name) else self._typed_method(func)
        return (name or "") in self.returns_element_lock

    def _bind_callable(self, ref: str, value: cst.BaseExpression) -> None:
        """``self.attr = func`` (or a parameter whose default is a function): calls of
        ``self.attr(...)`` may run that function."""
        if isinstance(value, cst.Name) and value.value in self.fn.params:
            self.param_attrs.setdefault((self.fn.qualname, value.value), []).append(ref)
            default = self.param_defaults.get(self.fn.qualname, {}).get(value.value)
            if default is None:
                return
            frame = self.frames.pop()  # a default is evaluated where the function is defined
            try:
                names = [c for c, _ in self._candidates(default, self.resolve(default))]
            finally:
                self.frames.append(frame)
        else:
            names = [c for c, _ in self._candidates(value, self.resolve(value))]
        if names:
            self.callable_attrs.setdefault(ref, []).append(names)

    def _bind_value(self, ref: str, value: cst.BaseExpression) -> None:
        if isinstance(value, cst.BooleanOperation) and isinstance(value.operator, cst.Or) and isinstance(value.right, cst.Call):
            value = value.right  # ``supplier or SupplierClient()``
        if self._builds_locks(value):
            self.lock_containers.add(ref)
        elif ref.startswith("l:") and (self._lock_element(value) or self._returns_lock_element(value)):
            self.element_locks.add(ref)
        call = value
        if isinstance(value, (cst.ListComp, cst.GeneratorExp)) and isinstance(value.elt, cst.Call):
            call = value.elt
            self.bound[id(call)] = (ref, True)
            return
        if isinstance(value, cst.List) and value.elements and isinstance(value.elements[0].value, cst.Call):
            for el in value.elements:
                if isinstance(el.value, cst.Call):
                    self.bound[id(el.value)] = (ref, True)
            return
        if not isinstance(call, cst.Call):
            return
        self.bound[id(call)] = (ref, False)
        qual = self.resolve(call.func)
        returned = self._returned_class(call.func, qual)
        if returned is not None:
            self.model.types[ref] = returned
            return
        if qual is None:
            return
        made = self.returns_primitive.get(qual)
        if made is not None and ref not in self.model.primitives:
            self.model.primitives[ref] = Primitive(ref, made.kind, made.type_name, made.node, made.function)
            return
        if qual == "collections.defaultdict":
            self.defaultdicts.add(ref)
        kind = PRIMITIVE_TYPES.get(qual)
        if kind is None and qual in ("dataclasses.field", "field"):
            factory = _kwarg(call, "default_factory")
            if factory is not None:
                fq = self.resolve(factory.value) or ""
                kind = PRIMITIVE_TYPES.get(fq)
                qual = fq
        if kind is not None:
            self.model.primitives[ref] = Primitive(ref, kind, qual, call, self.fn.qualname)
            if kind == "Condition":
                given = next((a.value for i, a in enumerate(call.args)
                              if (a.keyword is None and i == 0) or (a.keyword is not None and a.keyword.value == "lock")), None)
                lock = self.ref(given) if isinstance(given, (cst.Name, cst.Attribute)) else None
                if lock is not None and lock != ref:
                    self.model.lock_aliases[ref] = lock
        elif qual in self.model.classes or qual.split(".<locals>.")[-1] in self.model.classes:
            self.model.types[ref] = self.model.classes.get(qual, self.model.classes.get(qual.split(".<locals>.")[-1])).name  # type: ignore[union-attr]
        elif qual in self.module_classes:
            self.model.types[ref] = qual

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            self._assign_target(target.target, node.value)
        if self.fn.qualname == MODULE and len(node.targets) == 1 and isinstance(node.targets[0].target, cst.Name):
            self._dispatch_table(node.targets[0].target.value, node.value)

    def _dispatch_table(self, name: str, value: cst.BaseExpression) -> None:
        """``COMMANDS = {"GET": cmd_get, "SET": cmd_set}``: calling ``COMMANDS[key](...)`` or
        ``COMMANDS.get(key)(...)`` may run any of the functions."""
        if not isinstance(value, cst.Dict) or not value.elements:
            return
        names = []
        for element in value.elements:
            if not isinstance(element, cst.DictElement) or not isinstance(element.value, (cst.Name, cst.Attribute)):
                return
            names.append([c for c, _ in self._candidates(element.value, self.resolve(element.value))])
        self.callable_attrs[f"table:{name}"] = names

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        ref = self.ref(node.target)
        if ref is not None:
            elements = self._annotated_elements(node.annotation.annotation)
            if elements is not None:
                self.elements[ref] = elements
        if node.value is not None:
            self._assign_target(node.target, node.value)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        target = node.target
        self.targets.add(id(target))
        if isinstance(target, cst.Subscript):
            self.targets.add(id(target.value))
            self._record(self.ref(target.value), "item-rmw", target)
            self.stored.add(id(target))
        else:
            self._record(self.ref(target), "rmw", target)

    def visit_Del(self, node: cst.Del) -> None:
        target = node.target
        if isinstance(target, cst.Subscript):
            self.targets.add(id(target.value))
            self._record(self.ref(target.value), "item-write", target)
            self.stored.add(id(target))

    def visit_Subscript(self, node: cst.Subscript) -> None:
        if self.defaultdicts and id(node) not in self.stored:
            ref = self.ref(node.value)
            if ref in self.defaultdicts:
                self._record(ref, "item-write", node)  # a missing key is inserted

    def visit_Arg(self, node: cst.Arg) -> None:
        if node.keyword is not None:
            self.targets.add(id(node.keyword))

    def visit_Param(self, node: cst.Param) -> None:
        self.targets.add(id(node.name))

    def visit_Global(self, node: cst.Global) -> bool:
        return False

    def visit_Nonlocal(self, node: cst.Nonlocal) -> bool:
        return False

    def visit_Name(self, node: cst.Name) -> None:
        self.name_counts[node.value] = self.name_counts.get(node.value, 0) + 1
        if id(node) in self.targets:
            return
        ref = self.name_ref(node.value)
        if ref is not None and ref.startswith(("g:", "l:")):
            if ref.startswith("l:") and ref[2:].rsplit(".", 1)[0] == self.fn.qualname:
                return
            self._record(ref, "read", node)

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        self.targets.add(id(node.attr))
        if id(node) in self.targets:
            self.targets.add(id(node.value))
            return True
        if id(node) in self.callee_nodes:
            return True
        ref = self.ref(node)
        if ref is not None:
            self._record(ref, "read", node)
        return True

    # -- calls ------------------------------------------------------------------------
    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        self.callee_nodes.add(id(func))
        attr = func.attr.value if isinstance(func, cst.Attribute) else None
        receiver = self.ref(func.value) if isinstance(func, cst.Attribute) else None
        qual = self.resolve(func)
        receiver_kind = self.model.primitive_kind(receiver)
        stmt = self.stmt
        whole = (
            stmt is not None
            and len(stmt.body) == 1
            and isinstance(stmt.body[0], cst.Expr)
            and stmt.body[0].value is node
        )
        call = Call(
            node=node,
            function=self.fn.qualname,
            qualname=qual,
            attr=attr,
            receiver=receiver,
            receiver_kind=receiver_kind,
            held=tuple(self.frame.held),
            loop_depth=self.frame.loop_depth,
            in_while=self.frame.while_depth > 0,
            statement=stmt if whole else None,
        )
        self.fn.calls.append(call)
        self.call_info[id(node)] = call
        self.pending.append(_PendingCall(call, self._candidates(func, qual)))
        if attr in ("acquire", "release") and isinstance(func, cst.Attribute):
            lock = self.lock_of(func.value)
            if lock is not None:
                ref, kind = lock
                if attr == "acquire":
                    blocking = not any(
                        (a.keyword is None and is_false_literal(a.value))
                        or (a.keyword is not None and a.keyword.value == "blocking" and is_false_literal(a.value))
                        or (a.keyword is not None and a.keyword.value == "timeout")
                        for a in node.args
                    ) and not (len([a for a in node.args if a.keyword is None]) >= 2)
                    self.fn.acquires.append(
                        LockAcquire(ref, kind, "acquire", self.fn.qualname, tuple(self.frame.held), node, blocking)
                    )
                    self.frame.held.append(HeldLock(ref, kind, "acquire", node))
                else:
                    self._release(ref)
        if attr in MUTATORS and receiver is not None and receiver not in self.model.types:
            self._record(receiver, "mutate", node)
        for arg in node.args:
            value = arg.value
            if isinstance(value, (cst.Name, cst.Attribute)):
                self.target_info[id(value)] = [c for c, _ in self._candidates(value, self.resolve(value))]
                self.arg_refs[id(value)] = self.ref(value)

    def _candidates(self, func: cst.BaseExpression, qual: str | None) -> list[tuple[str, bool]]:
        out: list[tuple[str, bool]] = []
        table = _table_lookup(func)
        if table is not None:
            return [(f"table:{table}", True)]
        if isinstance(func, cst.Name):
            if qual:
                out.append((qual, True))
                out.append((f"cls:{qual}.__init__", True))
        elif isinstance(func, cst.Attribute):
            meth = func.attr.value
            value = func.value
            if isinstance(value, cst.Name):
                cls = self.self_class(value.value)
                if cls is not None:
                    out.append((f"cls:{cls}.{meth}", True))
                    return out
            if isinstance(value, cst.Call) and dotted(value.func) == "super":
                cls = self._enclosing_class()
                if cls is not None:
                    out.append((f"super:{cls}.{meth}", True))
                return out
            base = self.ref(value)
            typ = self.model.types.get(base) if base else None
            if typ is not None:
                out.append((f"cls:{typ}.{meth}", False))
            elif qual:
                out.append((qual, True))
        return out

    def _enclosing_class(self) -> str | None:
        for frame in reversed(self.frames):
            if frame.info.class_name:
                return frame.info.class_name
        return None


class _RefFinder(cst.CSTVisitor):
    def __init__(self, builder: ModelBuilder, ref: str) -> None:
        self.builder = builder
        self.target = ref
        self.found = False

    def visit_Name(self, node: cst.Name) -> bool:
        if not self.found and self.builder.name_ref(node.value) == self.target:
            self.found = True
        return False

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        if self.found:
            return False
        if self.builder.ref(node) == self.target:
            self.found = True
            return False
        return True

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False


def _blocks(stmt: cst.CSTNode) -> list[cst.BaseSuite]:
    out: list[cst.BaseSuite] = []
    if isinstance(stmt, cst.If):
        out.append(stmt.body)
        if stmt.orelse is not None:
            if isinstance(stmt.orelse, cst.If):
                out.extend(_blocks(stmt.orelse))
            else:
                out.append(stmt.orelse.body)
    elif isinstance(stmt, cst.Try):
        out.append(stmt.body)
        out.extend(h.body for h in stmt.handlers)
    return [b for b in out if isinstance(b, cst.IndentedBlock)]


# -- post-processing ----------------------------------------------------------------------


def _method(model: ModuleModel, cls: str, meth: str, seen: set[str] | None = None) -> str | None:
    info = model.classes.get(cls)
    if info is None:
        return None
    if meth in info.methods:
        return info.methods[meth]
    seen = seen or set()
    seen.add(cls)
    for base in info.bases:
        short = base.split(".<locals>.")[-1]
        if short in model.classes and short not in seen:
            found = _method(model, short, meth, seen)
            if found:
                return found
    return None


def _is_thread_class(model: ModuleModel, cls: str, seen: set[str] | None = None) -> bool:
    info = model.classes.get(cls)
    if info is None:
        return False
    seen = seen or set()
    seen.add(cls)
    for base in info.bases:
        if base in THREAD_TYPES:
            return True
        short = base.split(".<locals>.")[-1]
        if short in model.classes and short not in seen and _is_thread_class(model, short, seen):
            return True
    return False


def _table_lookup(func: cst.BaseExpression) -> str | None:
    """``T`` for a callee spelled ``T[key]`` or ``T.get(key)``."""
    if isinstance(func, cst.Subscript) and isinstance(func.value, cst.Name):
        return func.value.value
    if (
        isinstance(func, cst.Call) and isinstance(func.func, cst.Attribute) and func.func.attr.value == "get"
        and isinstance(func.func.value, cst.Name)
    ):
        return func.func.value.value
    return None


def _types_from_constructors(builder: ModelBuilder) -> set[str]:
    """``self.publisher = publisher`` in ``__init__``, where every ``Engine(...)`` in the module
    passes an object of the same module class (``Engine(symbols, MarketData())`` or a local bound
    to one): the attribute has that class. Returns the attribute refs typed this way."""
    model = builder.model
    typed: set[str] = set()
    built: dict[str, list[Call]] = {}
    for pending in builder.pending:
        if pending.call.qualname:
            built.setdefault(pending.call.qualname, []).append(pending.call)
    for (init, param), refs in builder.param_attrs.items():
        info = model.functions.get(init)
        if info is None or info.name != "__init__" or info.class_name is None or len(refs) != 1 or refs[0] in model.types:
            continue
        ref = refs[0]
        params = list(info.params)
        if params and params[0] == "self":
            params = params[1:]
        if param not in params:
            continue
        index = params.index(param)
        cls = info.class_name
        found: set[str] = set()
        sites = 0
        for call in built.get(cls, []) + (built.get(cls.split(".<locals>.")[-1], []) if ".<locals>." in cls else []):
            sites += 1
            args = call.node.args
            value = next((a.value for a in args if a.keyword is not None and a.keyword.value == param), None)
            if value is None and len(args) > index and all(a.keyword is None and not a.star for a in args[: index + 1]):
                value = args[index].value
            found.add(_value_class(builder, call.function, value) or "?")
        if sites and len(found) == 1 and "?" not in found:
            model.types[ref] = found.pop()
            typed.add(ref)
    return typed


KEYED_LOCK = "KeyedLock"
"""The kind of a lock taken from a container of locks (one per key): it keeps out only the
threads working on the same key, so it is not a lock that stalls every other thread
(THR016) nor one whose re-acquisition is known to deadlock (THR008)."""
ELEMENT_LOCK = "<element lock>"
"""What ``returned_refs`` notes for ``return locks[key]``."""


def _types_from_calls(builder: ModelBuilder) -> set[str]:
    """A parameter of a module function that every call of it (``settle(book, order)``) and
    every thread started on it (``Thread(target=settle, args=(book, order))``) passes an
    object of the same module class has that class, when the function is named nowhere else
    (not handed on as a callback, whose callers are unknown). Returns the refs typed this way."""
    model = builder.model
    sites: dict[str, list[tuple[str, list[cst.Arg] | None]]] = {}
    for pending in builder.pending:
        call = pending.call
        qual = call.qualname or ""
        func = call.node.func
        if isinstance(func, cst.Name) and func.value in model.functions:
            sites.setdefault(func.value, []).append((call.function, list(call.node.args)))
        elif qual in ("threading.Thread", "threading.Timer"):
            key = "target" if qual == "threading.Thread" else "function"
            target = _kwarg(call.node, key)
            args = _kwarg(call.node, "args")
            if target is None or not isinstance(target.value, cst.Name) or target.value.value not in model.functions:
                continue
            elements = args.value.elements if args is not None and isinstance(args.value, (cst.Tuple, cst.List)) else None
            if args is not None and (elements is None or any(isinstance(e, cst.StarredElement) for e in elements)):
                sites.setdefault(target.value.value, []).append((call.function, None))
                continue
            sites.setdefault(target.value.value, []).append(
                (call.function, [cst.Arg(e.value) for e in elements] if elements else []))
    defined: dict[str, int] = {}
    for info in model.functions.values():
        defined[info.name] = defined.get(info.name, 0) + 1
    typed: set[str] = set()
    for qual, found in sites.items():
        info = model.functions[qual]
        if info.class_name or info.parent not in (None, MODULE):
            continue
        if builder.name_counts.get(qual, 0) - defined.get(qual, 0) != len(found):
            continue  # also named elsewhere: handed on, its other callers unknown
        for index, param in enumerate(info.params):
            ref = f"l:{qual}.{param}"
            if ref in model.types or ref in model.primitives:
                continue
            classes: set[str] = set()
            for function, args in found:
                if args is None or any(a.star for a in args) or any(a.keyword is not None for a in args[: index + 1]):
                    classes.add("?")
                    break
                value = next((a.value for a in args if a.keyword is not None and a.keyword.value == param), None)
                if value is None and len(args) > index:
                    value = args[index].value
                classes.add(_value_class(builder, function, value) or "?")
            if len(classes) == 1 and "?" not in classes:
                model.types[ref] = classes.pop()
                typed.add(ref)
    return typed


def _value_class(builder: ModelBuilder, function: str, value: cst.BaseExpression | None) -> str | None:
    """The module class of an argument: a construction ``C(...)`` or a typed local/attribute."""
    model = builder.model
    if value is None:
        return None
    if isinstance(value, cst.Call):
        call = builder.call_info.get(id(value))
        qual = call.qualname if call is not None else None
        return qual if qual in model.classes else None
    if isinstance(value, cst.Name):
        info = model.functions.get(function)
        if info is not None and info.class_name and info.self_name == value.value:
            return info.class_name  # ``Segment(queue, self)`` in a method: the method's class
        return model.types.get(f"l:{function}.{value.value}") or model.types.get(f"g:{value.value}")
    if isinstance(value, cst.Attribute):  # ``sorter.tracker``, ``self.tracker``
        info = model.functions.get(function)
        base = value.value
        if isinstance(base, cst.Name) and info is not None and info.class_name and base.value == info.self_name:
            owner = info.class_name
        else:
            owner = _value_class(builder, function, base)
        return model.types.get(f"a:{owner.split('.<locals>.')[-1]}.{value.attr.value}") if owner else None
    return None


def _resolve_candidates(model: ModuleModel, pending: _PendingCall, callable_attrs: dict[str, list[list[str]]]) -> None:
    callees: list[str] = []
    same = True
    for cand, same_instance in pending.candidates:
        if cand.startswith("table:"):
            found = [t for names in callable_attrs.get(cand, ()) for t in _resolve_target_names(model, names)]
            callees.extend(dict.fromkeys(found))
            break
        if cand.startswith("cls:"):
            cls, _, meth = cand[4:].rpartition(".")
            target = _method(model, cls.split(".<locals>.")[-1], meth)
            if target is None and f"a:{cls}.{meth}" in callable_attrs:
                found = [t for names in callable_attrs[f"a:{cls}.{meth}"] for t in _resolve_target_names(model, names)]
                if found:
                    callees.extend(dict.fromkeys(found))
                    break
        elif cand.startswith("super:"):
            cls, _, meth = cand[6:].rpartition(".")
            info = model.classes.get(cls)
            target = None
            for base in info.bases if info else ():
                target = _method(model, base.split(".<locals>.")[-1], meth)
                if target:
                    break
        else:
            target = cand if cand in model.functions else None
        if target:
            callees.append(target)
            same = same_instance
            break
    pending.call.callees = tuple(callees)
    pending.call.same_instance = same


def _target_functions(builder: ModelBuilder, expr: cst.BaseExpression | None) -> tuple[str, ...]:
    if expr is None:
        return ()
    model = builder.model
    if isinstance(expr, cst.Lambda):
        name = builder.lambda_names.get(id(expr))
        return (name,) if name else ()
    if isinstance(expr, cst.Call):
        call = builder.call_info.get(id(expr))
        if call and call.qualname in ("functools.partial", "partial") and expr.args:
            return _target_functions(builder, expr.args[0].value)
        return ()
    return _resolve_target_names(model, builder.target_info.get(id(expr), []))


def _pass_callables(builder: ModelBuilder) -> bool:
    """Functions passed as arguments to a function that stores the parameter in an
    attribute (``Worker(on_done=self.record)`` with ``self.on_done = on_done``): calling the
    attribute may run them. True when anything was added."""
    if not builder.param_attrs:
        return False
    added = False
    for pending in builder.pending:
        call = pending.call
        for callee in call.callees:
            params = builder.model.functions[callee].params
            if builder.model.functions[callee].self_name:
                params = params[1:]
            for i, arg in enumerate(call.node.args):
                if arg.star:
                    break
                name = arg.keyword.value if arg.keyword is not None else (params[i] if i < len(params) else None)
                names = builder.target_info.get(id(arg.value))
                if names is None and id(arg.value) in builder.lambda_names:
                    names = [builder.lambda_names[id(arg.value)]]  # ``on_frame=lambda ...: self._ingest(...)``
                if names is None and isinstance(arg.value, cst.Call):
                    names = _made_functions(builder, arg.value) or None  # ``on_report=make_hook(state)``
                if name is None or not names:
                    continue
                for ref in builder.param_attrs.get((callee, name), ()):
                    builder.callable_attrs.setdefault(ref, []).append(names)
                    added = True
    return added


def _made_functions(builder: ModelBuilder, node: cst.Call) -> list[str]:
    """The nested functions a factory call returns (``def make_hook(state): def hook(r): ...;
    return hook``)."""
    call = builder.call_info.get(id(node))
    out: list[str] = []
    for factory in call.callees if call is not None else ():
        for ref in builder.returned_refs.get(factory, ()):
            if ref and ref.startswith(f"l:{factory}."):
                nested = f"{factory}.<locals>.{ref.rsplit('.', 1)[1]}"
                if nested in builder.model.functions:
                    out.append(nested)
    return out


def _resolve_target_names(model: ModuleModel, names: list[str]) -> tuple[str, ...]:
    for cand in names:
        if cand.startswith("cls:"):
            cls, _, meth = cand[4:].rpartition(".")
            found = _method(model, cls.split(".<locals>.")[-1], meth)
            if found:
                return (found,)
        elif cand in model.functions:
            return (cand,)
    return ()


def _find_spawns(builder: ModelBuilder) -> None:
    model = builder.model
    for fn in list(model.functions.values()):
        for call in fn.calls:
            spawn = _spawn_of(builder, call)
            if spawn is None:
                continue
            bound = builder.bound.get(id(call.node))
            if bound is not None:
                ref, is_list = bound
                spawn.bound_to = ref
                if is_list:
                    builder.thread_lists.add(ref)
                    spawn.in_loop = True
                elif spawn.kind in ("thread", "timer", "subclass"):
                    model.thread_vars[ref] = spawn
            daemon = _kwarg(call.node, "daemon")
            if daemon is not None:
                spawn.daemon = isinstance(daemon.value, cst.Name) and daemon.value.value == "True"
            model.spawns.append(spawn)


def _spawn_of(builder: ModelBuilder, call: Call) -> Spawn | None:
    model = builder.model
    node = call.node
    qual = call.qualname or ""
    in_loop = call.loop_depth > 0
    kind = THREAD_TYPES.get(qual)

    def targets(expr: cst.BaseExpression | None) -> tuple[str, ...]:
        if expr is None:
            return ()
        if isinstance(expr, (cst.Name, cst.Attribute)):
            names = builder.target_info.get(id(expr), [])
            found = _resolve_target_names(model, names)
            if not found and not names and isinstance(expr, cst.Attribute):
                found = _unique_method(model, expr.attr.value)
            return found
        return _target_functions(builder, expr)

    if kind == "thread":
        target = _kwarg(node, "target") or _positional(node, 1)
        args = _kwarg(node, "args") or _positional(node, 3)
        expr = target.value if target else None
        return Spawn("thread", node, call.function, expr, targets(expr), args, in_loop)
    if kind == "timer":
        target = _kwarg(node, "function") or _positional(node, 1)
        args = _kwarg(node, "args") or _positional(node, 2)
        expr = target.value if target else None
        return Spawn("timer", node, call.function, expr, targets(expr), args, in_loop)
    short = qual.split(".<locals>.")[-1]
    if short in model.classes and model.classes[short].is_thread:
        run = _method(model, short, "run")
        target = _kwarg(node, "target")
        expr = target.value if target else None
        found = (run,) if run else targets(expr)
        return Spawn("subclass", node, call.function, expr, found, _kwarg(node, "args"), in_loop)
    server = short or qual
    if not server and _super_init(node):
        server = model.functions[call.function].class_name or ""  # ``super().__init__(addr, Handler)``
    if server and _is_threading_server(model, server):
        handler = _kwarg(node, "RequestHandlerClass") or _positional(node, 1)
        expr = handler.value if handler else None
        found = _handler_methods(model, expr)
        if found:
            if server in model.classes:
                _server_attribute(model, found, server)
            return Spawn("handler", node, call.function, expr, found, None, True)
        return None
    if qual in ("_thread.start_new_thread", "_thread.start_new"):
        target = _positional(node, 0)
        expr = target.value if target else None
        return Spawn("start_new_thread", node, call.function, expr, targets(expr), _positional(node, 1), in_loop)
    if qual == "asyncio.to_thread":
        target = _positional(node, 0)
        expr = target.value if target else None
        return Spawn("to_thread", node, call.function, expr, targets(expr), None, in_loop)
    if call.attr == "run_in_executor":
        target = _positional(node, 1)
        expr = target.value if target else None
        return Spawn("run_in_executor", node, call.function, expr, targets(expr), None, in_loop)
    if call.attr in ("submit", "map") and isinstance(node.func, cst.Attribute):
        rk = call.receiver_kind
        certain = rk in EXECUTOR_KINDS
        if rk is None:
            text = dotted(node.func.value) or ""
            if not EXECUTORISH.search(text.rsplit(".", 1)[-1]):
                return None
        elif not certain:
            return None
        if rk == "ProcessPoolExecutor":
            return None
        target = _positional(node, 0)
        expr = target.value if target else None
        return Spawn(call.attr, node, call.function, expr, targets(expr), None, in_loop, certain=certain, executor=call.receiver)
    return None


THREADING_SERVERS = frozenset(
    {
        "socketserver.ThreadingTCPServer", "socketserver.ThreadingUDPServer", "socketserver.ThreadingMixIn",
        "socketserver.ThreadingUnixStreamServer", "socketserver.ThreadingUnixDatagramServer",
        "http.server.ThreadingHTTPServer",
    }
)
"""Servers that handle each request on a new thread (the handler class's methods run there)."""
HANDLER_METHODS = ("setup", "handle", "finish")


def _is_threading_server(model: ModuleModel, name: str, seen: set[str] | None = None) -> bool:
    if name in THREADING_SERVERS:
        return True
    info = model.classes.get(name)
    if info is None:
        return False
    seen = seen or set()
    seen.add(name)
    return any(
        base in THREADING_SERVERS or (base.split(".<locals>.")[-1] not in seen and _is_threading_server(
            model, base.split(".<locals>.")[-1], seen))
        for base in info.bases
    )


def _server_attribute(model: ModuleModel, handlers: tuple[str, ...], server: str) -> None:
    """A request handler's ``self.server`` is the server object: ``self.server.x`` in the
    handler is the server's ``x`` (the refs were made before the server class was known)."""
    for cls in {model.functions[h].class_name for h in handlers if h in model.functions} - {None}:
        prefix = f"a:{cls}.server."
        for fn in model.functions.values():
            for acc in fn.accesses:
                if acc.ref.startswith(prefix):
                    acc.ref = f"a:{server}.{acc.ref[len(prefix):]}"
            for c in fn.calls:
                if c.receiver and c.receiver.startswith(prefix):
                    c.receiver = f"a:{server}.{c.receiver[len(prefix):]}"


def _super_init(node: cst.Call) -> bool:
    func = node.func
    return (
        isinstance(func, cst.Attribute)
        and func.attr.value == "__init__"
        and isinstance(func.value, cst.Call)
        and isinstance(func.value.func, cst.Name)
        and func.value.func.value == "super"
    )


def _handler_methods(model: ModuleModel, expr: cst.BaseExpression | None) -> tuple[str, ...]:
    """The request-handling methods of a handler class of this module: ``setup``/``handle``/
    ``finish`` and an HTTP handler's ``do_GET``-style methods."""
    name = dotted(expr) if expr is not None else None
    cls = model.imports.get(name, name) if name else None
    cls = cls.split(".<locals>.")[-1] if cls else None
    if cls not in model.classes:
        return ()
    found = {m for meth in HANDLER_METHODS if (m := _method(model, cls, meth))}
    seen: set[str] = set()
    todo = [cls]
    while todo:
        info = model.classes.get(todo.pop())
        if info is None or info.name in seen:
            continue
        seen.add(info.name)
        found.update(q for meth, q in info.methods.items() if meth.startswith("do_"))
        todo.extend(b.split(".<locals>.")[-1] for b in info.bases)
    return tuple(sorted(found))


def _unique_method(model: ModuleModel, name: str) -> tuple[str, ...]:
    """``obj.name`` with ``obj`` of unknown type: the method, when exactly one class of
    the module defines ``name`` (``Thread(target=account.deposit)``)."""
    if name.startswith("__"):
        return ()
    found = {info.methods[name] for info in model.classes.values() if name in info.methods}
    return (found.pop(),) if len(found) == 1 else ()


def _propagate_thread_vars(builder: ModelBuilder) -> None:
    model = builder.model
    by_list: dict[str, Spawn] = {}
    for spawn in model.spawns:
        if spawn.bound_to in builder.thread_lists:
            by_list[spawn.bound_to] = spawn
    for fn in model.functions.values():
        for call in fn.calls:
            if call.attr == "append" and call.receiver and call.node.args:
                spawn = _spawn_for_arg(model, builder, call.node.args[0].value)
                if spawn is not None:
                    builder.thread_lists.add(call.receiver)
                    by_list.setdefault(call.receiver, spawn)
                    spawn.in_loop = spawn.in_loop or call.loop_depth > 0
    for target, source in builder.pending_for:
        if source in by_list:
            model.thread_vars.setdefault(target, by_list[source])


def _spawn_for_arg(model: ModuleModel, builder: ModelBuilder, expr: cst.BaseExpression) -> Spawn | None:
    if isinstance(expr, cst.Call):
        for spawn in model.spawns:
            if spawn.node is expr:
                return spawn
        return None
    ref = builder.arg_refs.get(id(expr))
    return model.thread_vars.get(ref) if ref else None


def build_model(module: cst.Module, path: str = "<string>") -> ModuleModel:
    """Extract the threading model of ``module`` (one traversal plus cheap post-passes)."""
    builder = ModelBuilder(module, path)
    module.visit(builder)
    model = builder.model
    for cls in model.classes.values():
        cls.is_thread = _is_thread_class(model, cls.name)
    typed = _types_from_constructors(builder) | _types_from_calls(builder)
    for pending in builder.pending:
        call = pending.call
        if call.receiver in typed and call.attr:
            pending.candidates.insert(0, (f"cls:{model.types[call.receiver]}.{call.attr}", False))
        _resolve_candidates(model, pending, builder.callable_attrs)
    if _pass_callables(builder):
        for pending in builder.pending:
            _resolve_candidates(model, pending, builder.callable_attrs)
    _find_spawns(builder)
    _propagate_thread_vars(builder)
    return model
