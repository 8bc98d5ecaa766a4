"""The threading map of a module: threads, the functions they run, the shared state those
touch and under which locks, with findings attached. Pure functions over ``ModuleModel``;
``render_text`` and ``render_mermaid`` turn a map into text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import libcst as cst

from .analysis.model import LOCK_KINDS, MODULE, ModuleModel, Span
from .rules.base import Finding

MAIN = "main"
INIT_FUNCTIONS = ("__init__", "__new__", "__post_init__", "setUp")
KIND_WORDS = {
    "read": "reads",
    "write": "writes",
    "rmw": "read-modify-writes",
    "item-write": "writes items",
    "item-rmw": "read-modify-writes items",
    "mutate": "mutates",
}

SpanOf = Callable[[cst.CSTNode], Span]


@dataclass(frozen=True)
class ThreadNode:
    id: str
    """``main`` or the qualname of the function the thread runs."""
    kind: str
    """``main``, ``thread``, ``timer``, ``submit``, ``map``, ``subclass``..."""
    many: bool
    """May run on several threads at once."""
    started_in: tuple[str, ...]
    findings: tuple[Finding, ...] = ()

    @property
    def label(self) -> str:
        if self.id == MAIN:
            return "main thread"
        word = {"submit": "pool task", "map": "pool task", "run_in_executor": "pool task", "to_thread": "pool task"}
        return f"{word.get(self.kind, 'thread')}: {display_function(self.id)}" + (" (several)" if self.many else "")


@dataclass(frozen=True)
class Touch:
    """One access: its kind, the locks held (sorted refs; ``()`` for none), its line."""

    kind: str
    locks: tuple[str, ...]
    line: int


@dataclass(frozen=True)
class StateUse:
    """How one function touches one piece of shared state."""

    function: str
    ref: str
    touches: tuple[Touch, ...]
    findings: tuple[Finding, ...] = ()

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(k for k in KIND_WORDS if any(t.kind == k for t in self.touches))

    @property
    def lock_sets(self) -> tuple[tuple[str, ...], ...]:
        return tuple(sorted({t.locks for t in self.touches}))

    @property
    def lines(self) -> tuple[int, ...]:
        return tuple(sorted({t.line for t in self.touches if t.line}))

    @property
    def writes(self) -> bool:
        return any(t.kind != "read" for t in self.touches)

    @property
    def unlocked(self) -> bool:
        return () in self.lock_sets


@dataclass(frozen=True)
class FunctionNode:
    qualname: str
    line: int
    threads: tuple[str, ...]
    takes: tuple[str, ...]
    """Locks this function acquires."""
    held_on_entry: tuple[str, ...]
    """Locks every caller holds when calling it."""
    calls: tuple[str, ...]
    """Callees that are on the map."""
    starts: tuple[str, ...]
    """Threads (ids) this function starts."""
    findings: tuple[Finding, ...] = ()


@dataclass(frozen=True)
class StateNode:
    ref: str
    threads: tuple[str, ...]


@dataclass(frozen=True)
class ThreadMap:
    path: str
    threads: tuple[ThreadNode, ...]
    functions: tuple[FunctionNode, ...]
    state: tuple[StateNode, ...]
    uses: tuple[StateUse, ...]
    locks: dict[str, str | None]
    """Lock ref -> primitive kind (``None`` when recognised by name only)."""
    findings: tuple[Finding, ...]
    names: dict[str, str]
    """Display name of every state and lock ref on the map."""

    def name(self, ref: str) -> str:
        return self.names.get(ref) or display_ref(ref)


# -- names ------------------------------------------------------------------------------------


def display_function(qualname: str) -> str:
    return "module level" if qualname == MODULE else qualname


def display_ref(ref: str, functions: Iterable[str] = ()) -> str:
    """``g:counter`` -> ``counter``; ``a:Pool.items`` -> ``Pool.items``; a local of a
    known function: ``l:main.results`` -> ``results (in main)``."""
    prefix, _, name = ref.partition(":")
    if prefix != "l":
        return name or ref
    owner = _local_owner(ref, functions)
    if owner is None:
        return name
    return f"{name[len(owner) + 1:]} (in {display_function(owner)})"


def _local_owner(ref: str, functions: Iterable[str]) -> str | None:
    """The function a ``l:`` ref belongs to (longest qualname that prefixes it)."""
    if not ref.startswith("l:"):
        return None
    name = ref[2:]
    best = None
    for fn in functions:
        if name.startswith(fn + ".") and (best is None or len(fn) > len(best)):
            best = fn
    return best


# -- building ---------------------------------------------------------------------------------


def lock_refs(model: ModuleModel) -> dict[str, str | None]:
    locks: dict[str, str | None] = {
        ref: p.kind for ref, p in model.primitives.items() if p.kind in LOCK_KINDS
    }
    for acq in model.acquires:
        locks.setdefault(acq.ref, acq.kind)
    return locks


def _is_state(model: ModuleModel, ref: str, owner: str | None) -> bool:
    prefix, _, name = ref.partition(":")
    if prefix not in ("g", "a", "l") or ref in model.primitives:
        return False
    if prefix == "g" and (name in model.functions or name in model.classes or name in model.imports):
        return False
    if prefix == "a" and name in model.functions:
        return False
    return not (prefix == "l" and owner is None)


def _is_init(qualname: str) -> bool:
    return qualname == MODULE or qualname.rsplit(".", 1)[-1] in INIT_FUNCTIONS


def build_map(model: ModuleModel, findings: Sequence[Finding] = (), span_of: SpanOf | None = None) -> ThreadMap:
    """The threading map of ``model``. ``span_of`` (node -> span) places findings on
    functions, accesses and thread starts; without it findings are placed by
    ``Finding.context`` only."""
    contexts = model.contexts
    locks = lock_refs(model)
    entries = model.thread_entries
    threaded = {name for name, ctx in contexts.items() if ctx - {MAIN}}

    def threads_of(fn: str) -> tuple[str, ...]:
        ctx = contexts.get(fn, frozenset())
        return tuple(sorted(ctx - {MAIN})) + ((MAIN,) if MAIN in ctx or not ctx else ())

    # shared state: touched on a thread, and changed somewhere after initialisation
    touched: dict[str, set[str]] = {}
    changed: set[str] = set()
    accessed_by: dict[str, set[str]] = {}
    for fn in model.functions.values():
        for acc in fn.accesses:
            accessed_by.setdefault(acc.ref, set()).add(fn.qualname)
    owners = {ref: _local_owner(ref, model.functions) for ref in accessed_by if ref.startswith("l:")}
    for fn in model.functions.values():
        for acc in fn.accesses:
            owner = owners.get(acc.ref)
            if acc.ref in locks or _declaration(acc) or not _is_state(model, acc.ref, owner):
                continue
            if owner is not None and accessed_by[acc.ref] == {owner}:
                continue
            touched.setdefault(acc.ref, set()).add(fn.qualname)
            if acc.kind != "read" and not _is_init(fn.qualname):
                changed.add(acc.ref)
    shared = sorted(
        ref for ref, fns in touched.items() if ref in changed and any(f in threaded for f in fns)
    )

    uses: list[StateUse] = []
    for fn in model.functions.values():
        by_ref: dict[str, list] = {}
        for acc in fn.accesses:
            if acc.ref in shared and not _declaration(acc) and not (_is_init(fn.qualname) and fn.qualname not in threaded):
                by_ref.setdefault(acc.ref, []).append(acc)
        for ref, accs in by_ref.items():
            touches = tuple(
                Touch(a.kind, tuple(sorted(model.effective_held(fn.qualname, a.held))), span_of(a.node).line if span_of else 0)
                for a in accs
            )
            busy = {(t.line, t.locks) for t in touches if t.kind != "read"}
            touches = tuple(t for t in touches if t.kind != "read" or (t.line, t.locks) not in busy)
            uses.append(StateUse(fn.qualname, ref, tuple(dict.fromkeys(touches))))

    # findings: to an access, a thread start, or the innermost function containing them
    placed = _place_findings(model, findings, span_of, uses)

    spawners: dict[str, set[str]] = {}
    for entry, spawns in entries.items():
        for s in spawns:
            spawners.setdefault(s.function, set()).add(entry)

    on_map = {u.function for u in uses} | set(entries) | set(spawners)
    on_map |= {fn for fn in placed["function"] if fn in model.functions}
    on_map |= {fn for fn in threaded if model.functions[fn].acquires}

    functions = []
    for name in sorted(on_map, key=lambda n: (_line(model, n, span_of), n)):
        fn = model.functions[name]
        functions.append(
            FunctionNode(
                qualname=name,
                line=_line(model, name, span_of),
                threads=threads_of(name),
                takes=tuple(dict.fromkeys(a.ref for a in fn.acquires)),
                held_on_entry=tuple(sorted(model.held_on_entry.get(name, frozenset()))),
                calls=tuple(sorted(c for c in model.callgraph.get(name, ()) if c in on_map and c != name)),
                starts=tuple(sorted(spawners.get(name, ()))),
                findings=tuple(placed["function"].get(name, ())),
            )
        )

    threads = [ThreadNode(MAIN, "main", False, ())]
    for entry in sorted(entries, key=lambda n: (_line(model, n, span_of), n)):
        spawns = entries[entry]
        threads.append(
            ThreadNode(
                entry,
                spawns[0].kind,
                model.is_multi_instance(entry),
                tuple(sorted({s.function for s in spawns})),
                tuple(placed["thread"].get(entry, ())),
            )
        )

    users: dict[str, set[str]] = {}
    for u in uses:
        users.setdefault(u.ref, set()).update(threads_of(u.function))
    state = tuple(StateNode(ref, tuple(sorted(users.get(ref, ()), key=lambda t: (t == MAIN, t)))) for ref in shared)
    uses = [
        StateUse(u.function, u.ref, u.touches, tuple(placed["use"].get((u.function, u.ref), ())))
        for u in uses
    ]
    used_locks = {l for u in uses for s in u.lock_sets for l in s} | {l for f in functions for l in f.takes + f.held_on_entry}
    return ThreadMap(
        path=model.path,
        threads=tuple(threads),
        functions=tuple(functions),
        state=state,
        uses=tuple(sorted(uses, key=lambda u: (u.ref, u.function))),
        locks={ref: kind for ref, kind in locks.items() if ref in used_locks},
        findings=tuple(findings),
        names={ref: display_ref(ref, model.functions) for ref in sorted(set(shared) | used_locks)},
    )


def _declaration(acc) -> bool:
    """``global x`` / ``nonlocal x`` statements: not an access."""
    stmt = acc.statement
    return isinstance(stmt, cst.SimpleStatementLine) and all(
        isinstance(b, (cst.Global, cst.Nonlocal)) for b in stmt.body
    )


def _line(model: ModuleModel, name: str, span_of: SpanOf | None) -> int:
    if name == MODULE or span_of is None:
        return 0
    return span_of(model.functions[name].node).line


def _contains(outer: Span, inner: Span) -> bool:
    return (outer.line, outer.column) <= (inner.line, inner.column) and (inner.end_line, inner.end_column) <= (
        outer.end_line,
        outer.end_column,
    )


def _place_findings(
    model: ModuleModel, findings: Sequence[Finding], span_of: SpanOf | None, uses: list[StateUse]
) -> dict[str, dict]:
    placed: dict[str, dict] = {"function": {}, "thread": {}, "use": {}}
    if not findings:
        return placed
    use_keys = {(u.function, u.ref) for u in uses}
    for f in findings:
        if span_of is None:
            if f.context in model.functions:
                placed["function"].setdefault(f.context, []).append(f)
            continue
        where = None
        for fn in model.functions.values():
            for acc in fn.accesses:
                if (fn.qualname, acc.ref) not in use_keys:
                    continue
                acc_span = span_of(acc.node)
                one_line = f.span.line == f.span.end_line
                if _contains(acc_span, f.span) or (one_line and _contains(f.span, acc_span)):
                    where = ("use", (fn.qualname, acc.ref))
                    break
            if where:
                break
        if where is None:
            for entry, spawns in model.thread_entries.items():
                if any(_contains(span_of(s.node), f.span) for s in spawns):
                    where = ("thread", entry)
                    break
        if where is None:
            where = _thread_call(model, f, span_of)
        if where is not None:
            bucket = placed[where[0]].setdefault(where[1], [])
            if f not in bucket:
                bucket.append(f)
        fn_name = _innermost_function(model, f.span, span_of)
        placed["function"].setdefault(fn_name, []).append(f)
    return placed


def _thread_call(model: ModuleModel, f: Finding, span_of: SpanOf) -> tuple[str, str] | None:
    """A finding on a method call of a thread object (``t.run()``, ``t.join()``) belongs
    to the thread that object runs."""
    for call in model.calls:
        spawn = model.thread_vars.get(call.receiver) if call.receiver else None
        if spawn is None or not _contains(span_of(call.node), f.span):
            continue
        for target in spawn.targets:
            if target in model.thread_entries:
                return ("thread", target)
    return None


def _innermost_function(model: ModuleModel, span: Span, span_of: SpanOf) -> str:
    best, best_size = MODULE, None
    for fn in model.functions.values():
        if fn.qualname == MODULE:
            continue
        s = span_of(fn.node)
        if _contains(s, span):
            size = (s.end_line - s.line, s.end_column - s.column)
            if best_size is None or size < best_size:
                best, best_size = fn.qualname, size
    return best


# -- rendering --------------------------------------------------------------------------------


def lock_names(tmap: ThreadMap, refs: Iterable[str]) -> str:
    return ", ".join(tmap.name(r) for r in refs)


def describe_use(tmap: ThreadMap, use: StateUse) -> str:
    """``read-modify-writes under lock; reads with no lock``."""
    parts = []
    for locks in use.lock_sets:
        kinds = [k for k in KIND_WORDS if any(t.kind == k and t.locks == locks for t in use.touches)]
        verbs = ", ".join(KIND_WORDS[k] for k in kinds)
        parts.append(f"{verbs} under {lock_names(tmap, locks)}" if locks else f"{verbs} with no lock")
    return "; ".join(parts)


def render_text(tmap: ThreadMap) -> str:
    from .output.sanitize import clean

    out = [f"Threading map of {tmap.path}", "", "Threads"]
    for t in tmap.threads:
        extra = ""
        if t.id != MAIN:
            extra = f"  started in {', '.join(display_function(s) for s in t.started_in)}"
        marks = _marks(t.findings)
        out.append(f"  {t.label}{extra}{marks}")
    out += ["", "Functions"]
    if not tmap.functions:
        out.append("  (none run on a thread or touch shared state)")
    for f in tmap.functions:
        where = f" line {f.line}" if f.line else ""
        out.append(f"  {display_function(f.qualname)}{where}  runs on: {', '.join(_thread_name(t) for t in f.threads)}{_marks(f.findings)}")
        if f.takes:
            out.append(f"      takes: {lock_names(tmap, f.takes)}")
        if f.held_on_entry:
            out.append(f"      called holding: {lock_names(tmap, f.held_on_entry)}")
        if f.calls:
            out.append(f"      calls: {', '.join(f.calls)}")
        if f.starts:
            out.append(f"      starts: {', '.join(f.starts)}")
    out += ["", "Shared state"]
    if not tmap.state:
        out.append("  (no state shared with a thread)")
    for s in tmap.state:
        out.append(f"  {tmap.name(s.ref)}  touched on: {', '.join(_thread_name(t) for t in s.threads)}")
        for u in tmap.uses:
            if u.ref == s.ref:
                lines = f" line {', '.join(map(str, u.lines))}" if u.lines else ""
                out.append(f"      {display_function(u.function)}{lines}: {describe_use(tmap, u)}{_marks(u.findings)}")
    if tmap.locks:
        out += ["", "Locks"]
        for ref, kind in sorted(tmap.locks.items()):
            takers = [display_function(f.qualname) for f in tmap.functions if ref in f.takes]
            out.append(f"  {tmap.name(ref)}  [{kind or 'lock'}]" + (f"  taken in {', '.join(takers)}" if takers else ""))
    out += ["", "Findings"]
    if not tmap.findings:
        out.append("  none")
    for f in sorted(tmap.findings, key=Finding.sort_key):
        out.append(f"  {f.span.line}:{f.span.column + 1} {f.code} {f.message}")
    return clean("\n".join(out)) + "\n"


def _thread_name(tid: str) -> str:
    return "main" if tid == MAIN else display_function(tid)


def _marks(findings: Sequence[Finding]) -> str:
    codes = sorted({f.code for f in findings})
    return f"  [! {', '.join(codes)}]" if codes else ""


_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _.,:-()/=+")


def mermaid_text(text: str) -> str:
    """Escape text for a quoted Mermaid label: every character outside a small safe set
    becomes a numeric entity (``#60;``), so quotes, brackets, pipes, ``<``, ``%%`` and
    markdown backticks cannot end the label or change the diagram."""
    return "".join(c if c in _PLAIN else f"#{ord(c)};" for c in text)


def render_mermaid(tmap: ThreadMap) -> str:
    """A Mermaid ``flowchart`` that renders on GitHub: stadium nodes for threads, boxes for
    functions, cylinders for state; edges say what runs what and which locks are held.
    Findings: nodes in class ``finding`` and red links, with the codes in their labels."""
    lines = [
        "flowchart LR",
        "  classDef thread fill:#e3ecfa,stroke:#3b5bdb,color:#1b1b1b",
        "  classDef func fill:#f8f9fa,stroke:#868e96,color:#1b1b1b",
        "  classDef state fill:#fff4e0,stroke:#e67700,color:#1b1b1b",
        "  classDef finding stroke:#e03131,stroke-width:3px,color:#c92a2a",
    ]
    ids: dict[tuple[str, str], str] = {}
    marked: list[str] = []
    bad_links: list[int] = []
    links: list[str] = []

    def node_id(kind: str, key: str) -> str:
        return ids.setdefault((kind, key), f"{kind}{len([k for k in ids if k[0] == kind])}")

    def label(parts: Sequence[str], findings: Sequence[Finding] = ()) -> str:
        codes = sorted({f.code for f in findings})
        text = "<br/>".join(mermaid_text(p) for p in parts if p)
        if codes:
            text += "<br/>" + mermaid_text("\u26a0 " + ", ".join(codes))
        return text

    for t in tmap.threads:
        tid = node_id("t", t.id)
        lines.append(f'  {tid}(["{label([t.label], t.findings)}"]):::thread')
        if t.findings:
            marked.append(tid)
    for f in tmap.functions:
        fid = node_id("f", f.qualname)
        parts = [display_function(f.qualname) + ("()" if f.qualname != MODULE else "")]
        if f.takes:
            parts.append("takes " + lock_names(tmap, f.takes))
        lines.append(f'  {fid}["{label(parts, f.findings)}"]:::func')
        if f.findings:
            marked.append(fid)
    for s in tmap.state:
        sid = node_id("s", s.ref)
        lines.append(f'  {sid}[("{label([tmap.name(s.ref)])}")]:::state')
        if any(u.findings for u in tmap.uses if u.ref == s.ref):
            marked.append(sid)

    def link(a: str, b: str, text: str = "", dotted: bool = False, bad: bool = False) -> None:
        arrow = "-.->" if dotted else "-->"
        links.append(f'  {a} {arrow}|"{text}"| {b}' if text else f"  {a} {arrow} {b}")
        if bad:
            bad_links.append(len(links) - 1)

    by_name = {f.qualname: f for f in tmap.functions}
    for f in tmap.functions:
        callers_here = {g.qualname for g in tmap.functions if f.qualname in g.calls}
        for t in f.threads:
            if t == f.qualname or (t == MAIN and not any(t in by_name[c].threads for c in callers_here)):
                link(ids[("t", t)], ids[("f", f.qualname)], "runs")
    for f in tmap.functions:
        for callee in f.calls:
            link(ids[("f", f.qualname)], ids[("f", callee)], "calls")
        for entry in f.starts:
            link(ids[("f", f.qualname)], ids[("t", entry)], "starts", dotted=True)
    for u in tmap.uses:
        text = mermaid_text(describe_use(tmap, u))
        if u.findings:
            text += "<br/>" + mermaid_text("\u26a0 " + ", ".join(sorted({x.code for x in u.findings})))
        link(ids[("f", u.function)], ids[("s", u.ref)], text, bad=bool(u.findings))
    lines += links
    if marked:
        lines.append(f"  class {','.join(dict.fromkeys(marked))} finding")
    if bad_links:
        lines.append(f"  linkStyle {','.join(map(str, bad_links))} stroke:#e03131,stroke-width:2px")
    return "\n".join(lines) + "\n"
