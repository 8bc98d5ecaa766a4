"""Seeded libcst rewrites of corpus examples: renamed identifiers, functions moved into a
class as methods, ``threading.X`` <-> ``from threading import X``. Every variant is
re-validated against the analyzer and de-duplicated."""

from __future__ import annotations

import builtins
import hashlib
import keyword
import random
import re
from dataclasses import dataclass, field

import libcst as cst

from .examples import Example
from .validate import judge, known_rules

SYNONYMS: dict[str, tuple[str, ...]] = {
    "account": ("wallet", "ledger_entry", "customer"),
    "balance": ("funds", "amount_left", "credit"),
    "batch": ("chunk", "group", "bundle"),
    "buffer": ("backlog", "pending_lines", "spool"),
    "cache": ("memo", "store", "lookup_table"),
    "channel": ("topic", "room", "feed"),
    "chunk": ("piece", "block", "slice_"),
    "client": ("session", "api", "connection_handle"),
    "conn": ("connection", "link", "peer"),
    "consume": ("drain", "process_items", "eat"),
    "consumer": ("drainer", "reader", "sink_worker"),
    "count": ("total", "tally", "n"),
    "counter": ("tally", "meter", "hit_count"),
    "crawl": ("scan", "spider", "walk_site"),
    "data": ("payload", "blob", "content"),
    "doc": ("document", "record", "page"),
    "download": ("fetch_file", "retrieve", "pull"),
    "entries": ("records", "rows", "items_"),
    "event": ("message", "signal_", "notice"),
    "events": ("messages", "notices", "signals_"),
    "fetch": ("retrieve", "load_remote", "grab"),
    "handle": ("process", "serve_one", "deal_with"),
    "handler": ("callback", "processor", "hook"),
    "hits": ("visits", "requests_seen", "views"),
    "item": ("task", "entry", "unit"),
    "items": ("tasks", "entries_", "units"),
    "job": ("task", "work_item", "order"),
    "jobs": ("tasks", "work_items", "orders"),
    "load": ("read_in", "materialize", "obtain"),
    "log": ("journal", "trace", "record_line"),
    "message": ("note", "packet", "envelope"),
    "monitor": ("watcher", "observer", "overseer"),
    "page": ("document", "sheet", "view"),
    "path": ("filename", "location", "file_path"),
    "paths": ("filenames", "locations", "file_paths"),
    "pending": ("waiting", "queued_up", "outstanding"),
    "process": ("transform", "work_on", "apply_to"),
    "producer": ("feeder", "generator_thread", "source_worker"),
    "record": ("entry", "row", "sample"),
    "records": ("entries", "rows", "samples"),
    "report": ("summary", "digest", "overview"),
    "result": ("outcome", "answer", "output"),
    "results": ("outcomes", "answers", "outputs"),
    "run": ("execute", "perform", "go"),
    "scrape": ("harvest", "crawl_page", "extract"),
    "send": ("transmit", "push", "deliver"),
    "server": ("service", "daemon_", "endpoint"),
    "session": ("context", "visit", "connection_state"),
    "stats": ("metrics", "figures", "numbers"),
    "task": ("job", "chore", "assignment"),
    "tasks": ("jobs", "chores", "assignments"),
    "total": ("sum_", "overall", "grand_total"),
    "upload": ("push_file", "put_remote", "ship"),
    "url": ("link", "address", "endpoint_url"),
    "urls": ("links", "addresses", "endpoint_urls"),
    "user": ("member", "customer", "person"),
    "users": ("members", "customers", "people"),
    "value": ("val", "amount", "datum"),
    "values": ("vals", "amounts", "data_points"),
    "work": ("labor", "job_fn", "toil"),
    "worker": ("handler", "processor", "runner"),
    "workers": ("handlers", "processors", "runners"),
}
"""Identifier tokens that may be swapped. Lock/condition/semaphore/queue/thread words are
left alone: the analyzer (and readers) recognise synchronisation objects by them."""

_BUILTINS = frozenset(dir(builtins))
_CLASS_NAMES = ("Service", "Processor", "Manager", "Coordinator", "Engine", "Runner")
TRANSFORMS = ("executor", "rename", "method", "imports")


@dataclass
class Variant:
    example: Example
    transforms: tuple[str, ...]


@dataclass
class AugmentReport:
    variants: list[Example] = field(default_factory=list)
    tried: int = 0
    dropped_invalid: int = 0
    dropped_duplicate: int = 0
    not_applicable: int = 0
    skipped_unchecked: int = 0


# -- helpers ------------------------------------------------------------------------------


def normalize(source: str) -> str:
    """Whitespace- and comment-insensitive form used to de-duplicate."""
    lines = []
    for line in source.splitlines():
        stripped = re.sub(r"\s+", " ", line.split("#", 1)[0]).strip()
        if stripped:
            lines.append(stripped)
    return "\n".join(lines)


def retext(text: str, mapping: dict[str, str]) -> str:
    """Apply an identifier mapping inside the backticked code spans of prose."""
    if not mapping or "`" not in text:
        return text
    pattern = re.compile(r"(?<![\w.])(" + "|".join(re.escape(k) for k in sorted(mapping, key=len, reverse=True)) + r")(?!\w)")

    def span(m: re.Match) -> str:
        return pattern.sub(lambda n: mapping[n.group(1)], m.group(0))

    return re.sub(r"`[^`]*`", span, text)


def _digest(code: str, fixed: str) -> str:
    return hashlib.sha256((normalize(code) + "\0" + normalize(fixed)).encode()).hexdigest()


class _Names(cst.CSTVisitor):
    """Names a snippet defines (renamable) and names it must not touch."""

    def __init__(self) -> None:
        self.defined: set[str] = set()
        self.self_attrs: set[str] = set()
        self.imported: set[str] = set()
        self.keywords: set[str] = set()
        self.methods: set[str] = set()
        self.attr_receivers: dict[str, set[str]] = {}
        self._class_depth = 0

    def visit_Attribute(self, node: cst.Attribute) -> None:
        recv = node.value.value if isinstance(node.value, cst.Name) else "?"
        self.attr_receivers.setdefault(node.attr.value, set()).add(recv)

    def leave_ClassDef(self, node: cst.ClassDef) -> None:
        self._class_depth -= 1

    def foreign_attrs(self) -> set[str]:
        """Attribute names also used on something other than ``self``/``cls``."""
        return {a for a, recv in self.attr_receivers.items() if recv - {"self", "cls"}}

    def visit_Import(self, node: cst.Import) -> None:
        for alias in node.names:
            name = alias.asname.name if alias.asname else alias.name
            for n in _dotted_parts(name):
                self.imported.add(n)

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        if isinstance(node.names, cst.ImportStar):
            return
        for alias in node.names:
            name = alias.asname.name if alias.asname else alias.name
            for n in _dotted_parts(name):
                self.imported.add(n)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.defined.add(node.name.value)
        if self._class_depth:
            self.methods.add(node.name.value)
        for p in (*node.params.posonly_params, *node.params.params, *node.params.kwonly_params):
            self.defined.add(p.name.value)
        for star in (node.params.star_arg, node.params.star_kwarg):
            if isinstance(star, cst.Param):
                self.defined.add(star.name.value)

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.defined.add(node.name.value)
        self._class_depth += 1

    def visit_Lambda(self, node: cst.Lambda) -> None:
        for p in node.params.params:
            self.defined.add(p.name.value)

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        self._target(node.target)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._target(node.target)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._target(node.target)

    def visit_For(self, node: cst.For) -> None:
        self._target(node.target)

    def visit_CompFor(self, node: cst.CompFor) -> None:
        self._target(node.target)

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        self._target(node.target)

    def visit_AsName(self, node: cst.AsName) -> None:
        self._target(node.name)

    def visit_Arg(self, node: cst.Arg) -> None:
        if node.keyword is not None:
            self.keywords.add(node.keyword.value)

    def _target(self, target: cst.BaseExpression) -> None:
        if isinstance(target, cst.Name):
            self.defined.add(target.value)
        elif isinstance(target, (cst.Tuple, cst.List)):
            for el in target.elements:
                self._target(el.value)
        elif isinstance(target, cst.StarredElement):
            self._target(target.value)
        elif isinstance(target, cst.Attribute) and isinstance(target.value, cst.Name) and target.value.value in ("self", "cls"):
            self.self_attrs.add(target.attr.value)


def _dotted_parts(expr: cst.BaseExpression) -> list[str]:
    if isinstance(expr, cst.Name):
        return [expr.value]
    if isinstance(expr, cst.Attribute):
        return _dotted_parts(expr.value)
    return []


def _rename_token_name(name: str, rng: random.Random, chosen: dict[str, str]) -> str | None:
    if name.startswith("__") and name.endswith("__"):
        return None
    lead = len(name) - len(name.lstrip("_"))
    core = name[lead:]
    parts = core.split("_")
    changed = False
    out = []
    for part in parts:
        key = part.lower()
        if key in SYNONYMS and part == key:
            if key not in chosen:
                chosen[key] = rng.choice(SYNONYMS[key])
            out.append(chosen[key].rstrip("_") if len(parts) > 1 else chosen[key])
            changed = True
        else:
            out.append(part)
    if not changed:
        return None
    new = "_" * lead + "_".join(p for p in out if p)
    if not new.isidentifier() or keyword.iskeyword(new):
        return None
    return new


class _Renamer(cst.CSTTransformer):
    def __init__(self, names: dict[str, str], attrs: dict[str, str]) -> None:
        self.names = names
        self.attrs = attrs
        self._skip: set[int] = set()

    def visit_Arg(self, node: cst.Arg) -> None:
        if node.keyword is not None:
            self._skip.add(id(node.keyword))

    def visit_Attribute(self, node: cst.Attribute) -> None:
        self._skip.add(id(node.attr))

    def visit_ImportAlias(self, node: cst.ImportAlias) -> bool:
        return False

    def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> cst.Attribute:
        new = self.attrs.get(original.attr.value)
        if new:
            return updated.with_changes(attr=cst.Name(new))
        return updated

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.Name:
        if id(original) in self._skip:
            return updated
        new = self.names.get(original.value)
        return updated.with_changes(value=new) if new else updated


# -- transforms ---------------------------------------------------------------------------


def rename(code: str, fixed: str, rng: random.Random) -> tuple[str, str, dict] | None:
    """Consistently swap identifier words (``fetch_all`` -> ``retrieve_all``) in both texts;
    also returns the old -> new names for the explanation."""
    mods = [cst.parse_module(code), cst.parse_module(fixed)]
    info = _Names()
    for m in mods:
        m.visit(info)
    protected = info.imported | info.keywords | info.methods | _BUILTINS | {"self", "cls"}
    chosen: dict[str, str] = {}
    mapping: dict[str, str] = {}
    for name in sorted(info.defined - protected):
        new = _rename_token_name(name, rng, chosen)
        if new and new not in info.defined and new not in protected:
            mapping[name] = new
    attrs: dict[str, str] = {}
    for name in sorted(info.self_attrs - protected - info.foreign_attrs()):
        new = _rename_token_name(name, rng, chosen)
        if new and new not in info.self_attrs:
            attrs[name] = new
    taken = set(mapping.values()) | set(attrs.values())
    if not mapping and not attrs or len(taken) < len(mapping) + len(set(attrs.values())):
        return None
    a, b = (m.visit(_Renamer(mapping, attrs)).code for m in mods)
    text_map = dict(mapping)
    for old, new in attrs.items():
        text_map[f"self.{old}"] = f"self.{new}"
        text_map[f"cls.{old}"] = f"cls.{new}"
    return a, b, text_map


def _module_functions(module: cst.Module) -> list[cst.FunctionDef] | None:
    """Top-level functions when the module is only imports, simple assignments and
    undecorated functions (the shape ``method`` can move into a class)."""
    funcs = []
    for stmt in module.body:
        if isinstance(stmt, cst.FunctionDef):
            if stmt.decorators or isinstance(stmt.asynchronous, cst.Asynchronous):
                return None
            funcs.append(stmt)
        elif isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                if not isinstance(small, (cst.Import, cst.ImportFrom, cst.Assign, cst.AnnAssign, cst.Expr)):
                    return None
                if isinstance(small, cst.Expr) and not isinstance(small.value, cst.SimpleString):
                    return None
        else:
            return None
    return funcs or None


class _UsesNames(cst.CSTVisitor):
    def __init__(self, names: set[str]) -> None:
        self.names = names
        self.found = False

    def visit_Name(self, node: cst.Name) -> None:
        if node.value in self.names:
            self.found = True


class _Selfify(cst.CSTTransformer):
    """Inside moved functions: ``f`` -> ``self.f`` for the moved functions' names."""

    def __init__(self, names: set[str]) -> None:
        self.names = names
        self._skip: set[int] = set()

    def visit_Arg(self, node: cst.Arg) -> None:
        if node.keyword is not None:
            self._skip.add(id(node.keyword))

    def visit_Attribute(self, node: cst.Attribute) -> None:
        self._skip.add(id(node.attr))

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._skip.add(id(node.name))

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.BaseExpression:
        if id(original) in self._skip or original.value not in self.names:
            return updated
        return cst.Attribute(cst.Name("self"), cst.Name(original.value))


def _to_class(source: str, class_name: str) -> str | None:
    module = cst.parse_module(source)
    funcs = _module_functions(module)
    if funcs is None:
        return None
    names = {f.name.value for f in funcs}
    for f in funcs:
        inner = _Names()
        f.params.visit(inner)
        f.body.visit(inner)
        if inner.defined & names:
            return None
    for stmt in module.body:
        if not isinstance(stmt, cst.FunctionDef):
            finder = _UsesNames(names | {"self", class_name})
            stmt.visit(finder)
            if finder.found:
                return None
    for f in funcs:
        params = [p.name.value for p in (*f.params.posonly_params, *f.params.params, *f.params.kwonly_params)]
        finder = _UsesNames({"self", "global", class_name})
        f.visit(finder)
        if "self" in params or finder.found or any(isinstance(s, cst.SimpleStatementLine) and any(isinstance(x, cst.Global) for x in s.body) for s in f.body.body):
            return None
    body: list[cst.BaseStatement] = []
    methods: list[cst.FunctionDef] = []
    for stmt in module.body:
        if isinstance(stmt, cst.FunctionDef):
            new = stmt.visit(_Selfify(names))
            assert isinstance(new, cst.FunctionDef)
            params = new.params.with_changes(params=(cst.Param(cst.Name("self")), *new.params.params))
            methods.append(new.with_changes(params=params))
        else:
            body.append(stmt)
    methods = [m.with_changes(leading_lines=[cst.EmptyLine(indent=False)] if i else []) for i, m in enumerate(methods)]
    cls = cst.ClassDef(
        name=cst.Name(class_name),
        body=cst.IndentedBlock(body=methods),
        leading_lines=[cst.EmptyLine(), cst.EmptyLine()],
    )
    return module.with_changes(body=[*body, cls]).code


def method(code: str, fixed: str, rng: random.Random) -> tuple[str, str] | None:
    """Move the module's functions into a class as methods (calls become ``self.f``)."""
    text = code + fixed
    names = [n for n in _CLASS_NAMES if n not in text]
    if not names:
        return None
    class_name = rng.choice(names)
    a, b = _to_class(code, class_name), _to_class(fixed, class_name)
    if a is None or b is None:
        return None
    return a, b


class _FromImports(cst.CSTTransformer):
    """``import threading`` + ``threading.X`` -> ``from threading import X`` + ``X``."""

    def __init__(self, module: str, attrs: set[str], imported: set[str] | None = None) -> None:
        self.module = module
        self.attrs = attrs
        self.imported = imported if imported is not None else attrs

    def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> cst.BaseExpression:
        if isinstance(updated.value, cst.Name) and updated.value.value == self.module and updated.attr.value in self.attrs:
            return cst.Name(updated.attr.value)
        return updated

    def leave_SimpleStatementLine(self, original, updated):
        new_body = []
        for small in updated.body:
            if isinstance(small, cst.Import) and len(small.names) == 1 and not small.names[0].asname:
                alias = small.names[0]
                if isinstance(alias.name, cst.Name) and alias.name.value == self.module:
                    new_body.append(cst.ImportFrom(
                        module=cst.Name(self.module),
                        names=[cst.ImportAlias(cst.Name(a)) for a in sorted(self.imported)],
                    ))
                    continue
            new_body.append(small)
        return updated.with_changes(body=new_body)


class _ModuleUses(cst.CSTVisitor):
    def __init__(self, module: str) -> None:
        self.module = module
        self.attrs: set[str] = set()
        self.bare = 0
        self.qualified = 0

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        if isinstance(node.value, cst.Name) and node.value.value == self.module:
            self.attrs.add(node.attr.value)
            self.qualified += 1
            return False
        return True

    def visit_Import(self, node: cst.Import) -> bool:
        return False

    def visit_Name(self, node: cst.Name) -> None:
        if node.value == self.module:
            self.bare += 1


def imports(code: str, fixed: str, rng: random.Random) -> tuple[str, str, dict] | None:
    """Switch ``threading.X`` / ``queue.X`` / ``time.X`` to ``from ... import X``."""
    mods = [cst.parse_module(code), cst.parse_module(fixed)]
    candidates = []
    for name in ("threading", "queue", "time", "subprocess"):
        uses = [_ModuleUses(name) for _ in mods]
        for m, u in zip(mods, uses):
            m.visit(u)
        if not all(u.qualified for u in uses) or any(u.bare for u in uses):
            continue
        attrs = set().union(*(u.attrs for u in uses))
        info = _Names()
        for m in mods:
            m.visit(info)
        if attrs & (info.defined | info.imported | info.self_attrs | info.keywords | _BUILTINS):
            continue
        if not all(f"import {name}\n" in src for src in (code, fixed)):
            continue
        candidates.append((name, attrs, [u.attrs for u in uses]))
    if not candidates:
        return None
    name, attrs, own = rng.choice(candidates)
    a, b = (m.visit(_FromImports(name, attrs, used)).code for m, used in zip(mods, own))
    return a, b, {f"{name}.{attr}": attr for attr in attrs}


def _thread_ctor(call: cst.BaseExpression, aliases: set[str]) -> tuple[cst.BaseExpression, list[cst.Arg]] | None:
    """``Thread(target=f, args=(a, b))`` -> (f, [a, b]) when nothing else is passed."""
    if not isinstance(call, cst.Call):
        return None
    func = call.func
    name = func.value if isinstance(func, cst.Name) else (
        f"{func.value.value}.{func.attr.value}" if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) else None
    )
    if name not in aliases:
        return None
    target, args = None, []
    for arg in call.args:
        key = arg.keyword.value if arg.keyword else None
        if key == "target":
            target = arg.value
        elif key == "args" and isinstance(arg.value, cst.Tuple):
            args = [cst.Arg(el.value) for el in arg.value.elements if not isinstance(el, cst.StarredElement)]
            if len(args) != len(arg.value.elements):
                return None
        else:
            return None
    if target is None or isinstance(target, cst.Call):
        return None
    return target, args


def _loop_over(stmt: cst.BaseStatement, seq: str, method: str) -> bool:
    """``for x in seq: x.method()`` with nothing else in the body."""
    if not (isinstance(stmt, cst.For) and isinstance(stmt.target, cst.Name) and isinstance(stmt.iter, cst.Name)):
        return False
    if stmt.iter.value != seq or stmt.orelse is not None or not isinstance(stmt.body, cst.IndentedBlock):
        return False
    body = stmt.body.body
    if len(body) != 1 or not isinstance(body[0], cst.SimpleStatementLine) or len(body[0].body) != 1:
        return False
    expr = body[0].body[0]
    return (
        isinstance(expr, cst.Expr)
        and isinstance(expr.value, cst.Call)
        and not expr.value.args
        and isinstance(expr.value.func, cst.Attribute)
        and isinstance(expr.value.func.value, cst.Name)
        and expr.value.func.value.value == stmt.target.value
        and expr.value.func.attr.value == method
    )


class _ThreadsToPool(cst.CSTTransformer):
    """``threads = [Thread(target=f, args=(x,)) for x in xs]`` + start loop + join loop ->
    ``with ThreadPoolExecutor() as pool:`` submitting ``f`` and waiting on every result."""

    def __init__(self, aliases: set[str], pool: str) -> None:
        self.aliases = aliases
        self.pool = pool
        self.count = 0

    def _rewrite(self, body: tuple) -> list:
        out = list(body)
        i = 0
        while i + 2 < len(out):
            first = out[i]
            if isinstance(first, cst.SimpleStatementLine) and len(first.body) == 1 and isinstance(first.body[0], cst.Assign):
                assign = first.body[0]
                target = assign.targets[0].target if len(assign.targets) == 1 else None
                comp = assign.value
                if isinstance(target, cst.Name) and isinstance(comp, cst.ListComp) and comp.for_in.inner_for_in is None:
                    parsed = _thread_ctor(comp.elt, self.aliases)
                    if parsed and _loop_over(out[i + 1], target.value, "start") and _loop_over(out[i + 2], target.value, "join"):
                        fn, args = parsed
                        submit = cst.Call(
                            cst.Attribute(cst.Name(self.pool), cst.Name("submit")), [cst.Arg(fn), *args]
                        )
                        futures = cst.parse_statement("futures = []")
                        futures = futures.with_changes(body=[cst.Assign(
                            [cst.AssignTarget(cst.Name("futures"))], comp.with_changes(elt=submit)
                        )])
                        wait = cst.parse_statement("for future in futures:\n    future.result()\n")
                        block = cst.With(
                            items=[cst.WithItem(
                                cst.Call(cst.Name("ThreadPoolExecutor")),
                                asname=cst.AsName(cst.Name(self.pool)),
                            )],
                            body=cst.IndentedBlock([futures, wait]),
                            leading_lines=first.leading_lines,
                        )
                        out[i:i + 3] = [block]
                        self.count += 1
            i += 1
        return out

    def leave_IndentedBlock(self, original, updated):
        return updated.with_changes(body=self._rewrite(updated.body))


def _thread_aliases(module: cst.Module) -> set[str]:
    aliases: set[str] = set()
    for stmt in module.body:
        if not isinstance(stmt, cst.SimpleStatementLine):
            continue
        for small in stmt.body:
            if isinstance(small, cst.Import):
                for a in small.names:
                    if isinstance(a.name, cst.Name) and a.name.value == "threading":
                        aliases.add(f"{a.asname.name.value if a.asname else 'threading'}.Thread")
            elif isinstance(small, cst.ImportFrom) and isinstance(small.module, cst.Name) and small.module.value == "threading":
                if not isinstance(small.names, cst.ImportStar):
                    for a in small.names:
                        if isinstance(a.name, cst.Name) and a.name.value == "Thread":
                            aliases.add(a.asname.name.value if a.asname else "Thread")
    return aliases


def _add_executor_import(module: cst.Module) -> cst.Module:
    line = cst.parse_statement("from concurrent.futures import ThreadPoolExecutor\n")
    body = list(module.body)
    last_import = -1
    for i, stmt in enumerate(body):
        if isinstance(stmt, cst.SimpleStatementLine) and all(isinstance(s, (cst.Import, cst.ImportFrom)) for s in stmt.body):
            last_import = i
    body.insert(last_import + 1, line)
    return module.with_changes(body=body)


def executor(code: str, fixed: str, rng: random.Random) -> tuple[str, str] | None:
    """Start-and-join loops over a list of ``Thread`` objects become a ``ThreadPoolExecutor``
    whose futures are all waited on (same work, same waiting, errors now propagate)."""
    if "ThreadPoolExecutor" in code or "ThreadPoolExecutor" in fixed:
        return None
    pool = rng.choice(("pool", "executor", "workers_pool"))
    out = []
    counts = []
    for src in (code, fixed):
        module = cst.parse_module(src)
        if pool in src or "futures" in src or "future" in src:
            return None
        tr = _ThreadsToPool(_thread_aliases(module), pool)
        new = module.visit(tr)
        counts.append(tr.count)
        out.append(_add_executor_import(new).code if tr.count else src)
    if counts[0] == 0 or counts[0] != counts[1]:
        return None
    return out[0], out[1]


_FUNCS = {"rename": rename, "method": method, "imports": imports, "executor": executor}


# -- driver -------------------------------------------------------------------------------


def variants_of(ex: Example, seed: int, count: int) -> list[Variant]:
    """Up to ``count`` rewritten versions of ``ex`` (not yet validated)."""
    out: list[Variant] = []
    for k in range(count):
        rng = random.Random(f"{seed}:{ex.id}:{k}")
        order = list(TRANSFORMS)
        rng.shuffle(order)
        picked = [t for t in order if rng.random() < 0.6] or order[:1]
        code, fixed, applied = ex.code, ex.fixed, []
        explanation, notes = ex.explanation, ex.notes
        for name in sorted(picked, key=TRANSFORMS.index):
            try:
                result = _FUNCS[name](code, fixed, rng)
            except (cst.ParserSyntaxError, RecursionError):
                result = None
            if result is not None:
                code, fixed = result[0], result[1]
                if len(result) > 2:
                    explanation = retext(explanation, result[2])
                    notes = retext(notes, result[2])
                applied.append(name)
        if not applied:
            continue
        new = Example(
            id=f"{ex.id}~{seed}.{k}",
            rule=ex.rule,
            code=code,
            explanation=explanation,
            fixed=fixed,
            notes=f"augmented from {ex.id} ({', '.join(applied)})" + (f"; {notes}" if notes else ""),
            path=ex.path,
            line=ex.line,
        )
        out.append(Variant(new, tuple(applied)))
    return out


def augment(examples: list[Example], seed: int = 0, per_example: int = 3) -> AugmentReport:
    """Rewrite every example ``per_example`` times; keep valid, distinct variants only."""
    report = AugmentReport()
    rules = known_rules()
    seen = {_digest(ex.code, ex.fixed) for ex in examples}
    for ex in examples:
        if ex.rule not in rules:
            report.skipped_unchecked += 1
            continue
        variants = variants_of(ex, seed, per_example)
        report.not_applicable += per_example - len(variants)
        for v in variants:
            report.tried += 1
            key = _digest(v.example.code, v.example.fixed)
            if key in seen:
                report.dropped_duplicate += 1
                continue
            seen.add(key)
            verdict = judge(v.example.code, v.example.fixed, v.example.rule, rules)
            if not verdict.ok:
                report.dropped_invalid += 1
                continue
            report.variants.append(v.example)
    return report


def write_variants(variants: list[Example], out_dir) -> list:
    """One JSONL per rule (``thrNNN_augmented.jsonl``) in ``out_dir``, written atomically."""
    import json
    import os
    import tempfile
    from pathlib import Path

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    by_rule: dict[str, list[Example]] = {}
    for v in variants:
        by_rule.setdefault(v.rule, []).append(v)
    written = []
    for rule in sorted(by_rule):
        target = out / f"{rule.lower()}_augmented.jsonl"
        fd, tmp = tempfile.mkstemp(dir=out, prefix=".aug-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                for v in by_rule[rule]:
                    fh.write(json.dumps(v.to_dict(), ensure_ascii=False) + "\n")
            os.replace(tmp, target)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        written.append(target)
    return written
