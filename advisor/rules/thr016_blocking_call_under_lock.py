from __future__ import annotations

import re
import weakref
from typing import Iterable

import libcst as cst

from ..analysis.extract import dotted
from ..analysis.model import Call, HeldLock, assigned_value
from ..analysis.syntax import OwnBodyVisitor
from ._race import call_at, calls_in, chain, function_label, ref_at, spawn_arg_params
from .base import Finding, Rule, RuleContext

HTTP_VERBS = ("get", "post", "put", "patch", "delete", "head", "options", "request")

BLOCKING: dict[str, str] = {
    "time.sleep": "sleeps",
    "input": "waits for user input",
    "os.system": "runs a subprocess",
    "os.popen": "runs a subprocess",
    "os.wait": "waits for a child process",
    "os.fsync": "waits for the disk (fsync)",
    "subprocess.run": "runs a subprocess",
    "subprocess.call": "runs a subprocess",
    "subprocess.check_call": "runs a subprocess",
    "subprocess.check_output": "runs a subprocess",
    "subprocess.getoutput": "runs a subprocess",
    "subprocess.getstatusoutput": "runs a subprocess",
    "urllib.request.urlopen": "does network I/O",
    "urllib.request.urlretrieve": "does network I/O",
    "socket.create_connection": "opens a network connection",
    "socket.getaddrinfo": "does a DNS lookup",
    "socket.gethostbyname": "does a DNS lookup",
    **{f"requests.{verb}": "does network I/O" for verb in HTTP_VERBS},
    **{f"httpx.{verb}": "does network I/O" for verb in HTTP_VERBS},
}

SEMAPHORE_NAME = re.compile(r"(^|_)(sem|semaphore|slots?|limiter|throttle)($|_)", re.I)


class BlockingCallUnderLock(Rule):
    """
    ## What it does
    Flags calls that can block for a long or unbounded time (`time.sleep`, subprocesses,
    HTTP requests, socket I/O, `os.fsync`, `input()`, `Thread.join()`, `Queue.get()` / `Event.wait()`
    without a timeout, `future.result()` on a future not yet known to be done) made while a
    `Lock`, `RLock` or `Condition` is held, directly or in a function called there (reported
    at the call; when other callers do not hold a lock, only if the function always blocks,
    not in a retry loop or a special case). Sockets are followed into containers, out
    through `for` loops and into the parameters of the module's functions; a stream
    handler's `wfile`/`rfile` is a socket too, and so are `accept()`'s connection and
    `socketpair()`'s ends; a socket made non-blocking is not. Socket
    I/O under a lock that every user takes only to do I/O on that socket (a write lock that
    keeps messages whole) is left alone. Waiting for another thread
    (a join, a queue join, an event) is left alone when the awaited code never takes the lock,
    or when no other function takes it (it only serialises calls of this one, as a `flush()`
    lock does): the wait cannot deadlock on it. A lock that is only ever tried
    (`acquire(blocking=False)`) keeps no thread waiting.

    ## Why is this bad?
    Every other thread that needs the lock stalls for the whole call, which serialises the
    program on its slowest I/O. When the blocked-on work itself needs the lock (a joined
    thread, the producer of a queue) the program deadlocks.

    Semaphores are not reported: bounding how many threads do slow work at once is what
    they are for. Nor is a lock taken from a container of locks (`self._locks[key]`): a
    per-key lock stalls only the threads working on the same key, usually on purpose. `Condition.wait()` is not reported: it releases the lock while waiting.

    ## Example
    ```python
    with self._lock:
        page = requests.get(url, timeout=10).text
        self._pages[url] = page
    ```

    ## Use instead
    ```python
    page = requests.get(url, timeout=10).text
    with self._lock:
        self._pages[url] = page
    ```
    """

    code = "THR016"
    name = "blocking-call-under-lock"
    summary = "blocking call (sleep, I/O, subprocess, join, get) made while holding a lock"
    help = "do the slow work before taking the lock, or copy what you need under the lock and release it first"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        model = ctx.model
        released: dict[str, set[str]] = {}

        takers: dict[str, set[str]] = {}
        for acq in model.acquires:
            takers.setdefault(acq.ref, set()).add(acq.function)
        # a lock only ever tried (``acquire(blocking=False)``): no thread waits for it
        try_only = {ref for ref in takers if not any(a.blocking for a in model.acquires if a.ref == ref)}

        def locks_at(call: Call, blocking: Call | None = None) -> list[HeldLock]:
            """Locks held at ``call`` that make ``blocking`` (the call itself, or a blocking
            call in the function it calls) stall other threads."""
            blocking = blocking or call
            if call.function not in released:
                released[call.function] = _released(ctx, model, call.function)
            what = _blocking(model, blocking)
            waits = what in WAITS_FOR_THREADS or (what == GET and _size_checked(model, blocking))
            return [
                h for h in call.held
                if _excludes(h) and _region(ctx, h, released[call.function]) and h.ref not in try_only
                and not (what in WAITS_FOR_THREADS and _awaited_never_takes(model, blocking, h.ref))
                and not (waits and takers.get(h.ref, set()) <= {call.function, blocking.function}
                         and not _awaited_takes_unknown(model, blocking))
            ]

        callers: dict[str, list[Call]] = {}
        for call in model.calls:
            for callee in call.callees:
                callers.setdefault(callee, []).append(call)
        reported: set[int] = set()
        for call in model.calls:
            what = _blocking(model, call)
            if what is None or _in_init_guard(model, call):
                continue
            locks = locks_at(call) if call.held else []
            if not locks:
                if call.function in model.thread_entries:
                    continue
                sites = callers.get(call.function, [])
                held_at = [locks_at(site, call) for site in sites]
                if not all(held_at) and not _unconditional(model, call):
                    continue  # a retry back-off or a special case, on a path some callers take unlocked
                for site, held in zip(sites, held_at):
                    if id(site.node) in reported or _in_init_guard(model, site) or not held:
                        continue
                    reported.add(id(site.node))
                    inner = f"`{_callee_text(ctx, call)}` (line {ctx.span(call.node).line})"
                    yield self.finding(
                        ctx,
                        site.node,
                        f"`{_callee_text(ctx, site)}` calls {inner}, which {what}, while "
                        f"`{_lock_text(ctx, held[-1])}` is held; every thread waiting for the lock stalls with it",
                        function=function_label(site.function),
                    )
                continue
            lock = _lock_text(ctx, locks[-1])
            yield self.finding(
                ctx,
                call.node,
                f"`{_callee_text(ctx, call)}` {what} while `{lock}` is held; every thread waiting for the lock stalls with it",
                function=function_label(call.function),
            )


JOIN = "waits for another thread to finish"
GET = "blocks until another thread puts an item"
QUEUE_JOIN = "blocks until every queued item is processed"
EVENT_WAIT = "blocks until another thread sets the event"
FUTURE_RESULT = "blocks until the task finishes"
WAITS_FOR_THREADS = frozenset({JOIN, QUEUE_JOIN, EVENT_WAIT})
"""What ``_blocking`` says of waits for another thread's work (its other answers are sleeps and I/O)."""


CONDITIONAL = (cst.If, cst.IfExp, cst.For, cst.While, cst.ExceptHandler, cst.BooleanOperation, cst.Lambda,
               cst.CompFor, cst.Match)


def _unconditional(model, call: Call) -> bool:
    """The call runs every time its function does (not under an ``if``, a loop or an
    ``except``; the body of a ``for _ in range(attempts)`` retry loop runs at least once)."""
    for node in chain(model, model.functions[call.function].node, call.node):
        if isinstance(node, cst.For) and _retry_range(node.iter):
            continue
        if isinstance(node, CONDITIONAL):
            return False
    return True


def _retry_range(expr: cst.BaseExpression) -> bool:
    """``range(n)`` / ``range(1, n + 1)`` with ``n`` a name or a positive literal."""
    if not (isinstance(expr, cst.Call) and isinstance(expr.func, cst.Name) and expr.func.value == "range"):
        return False
    stop = expr.args[-1].value if expr.args else None
    return isinstance(stop, (cst.Name, cst.Attribute, cst.BinaryOperation)) or (
        isinstance(stop, cst.Integer) and stop.evaluated_value > 0
    )


def _awaited(model, call: Call) -> set[str]:
    """The code a wait waits for: the joined thread's target, the consumers of the joined
    queue (``get``/``task_done`` callers), the setters of the event."""
    if call.attr == "join" and call.receiver in model.thread_vars:
        return model.reachable(model.thread_vars[call.receiver].targets)
    if call.attr in ("join", "wait") and call.receiver:
        names = ("get", "get_nowait", "task_done") if call.attr == "join" else ("set",)
        users = {c.function for c in model.calls if c.receiver == call.receiver and c.attr in names}
        return model.reachable(users)
    return set()


def _awaited_never_takes(model, call: Call, lock: str) -> bool:
    """The code being waited for never takes ``lock``: the joined thread's target, the
    consumers of the joined queue (``get``/``task_done`` callers), the setters of the event.
    Then the wait cannot deadlock on it: holding the lock is a barrier for its other users
    (``flush()`` keeping writers out while the queue drains), not a stall of the awaited work."""
    awaited = _awaited(model, call)
    if not awaited or any(_runs_scheduled_code(model, f) for f in awaited):
        return False  # a thread running an event loop also runs whatever is scheduled on it
    return not any(
        a.ref == lock or a.ref not in model.primitives  # a lock reached through an untyped object may be this one
        for f in awaited for a in model.functions[f].acquires
    )


def _awaited_takes_unknown(model, call: Call) -> bool:
    """The awaited code takes a lock reached through an object of unknown type (it may be
    the one held here)."""
    awaited = _awaited(model, call)
    return bool(awaited) and any(a.ref not in model.primitives for f in awaited for a in model.functions[f].acquires)


def _runs_scheduled_code(model, function: str) -> bool:
    info = model.functions[function]
    return info.is_async or any(
        c.attr in ("run_forever", "run_until_complete", "run", "run_sync") or c.qualname == "asyncio.run" for c in info.calls
    )


def _size_checked(model, call: Call) -> bool:
    """``q.get()`` inside ``while q.qsize() ...:`` / ``if not q.empty():`` on the same queue:
    with every consumer holding the same lock, it finds an item."""
    func = call.node.func
    receiver = dotted(func.value) if isinstance(func, cst.Attribute) else None
    if receiver is None:
        return False
    for node in chain(model, model.functions[call.function].node, call.node):
        if isinstance(node, (cst.If, cst.While)):
            for sub in calls_in(node.test):
                if isinstance(sub.func, cst.Attribute) and sub.func.attr.value in ("empty", "qsize") and dotted(sub.func.value) == receiver:
                    return True
    return False


def _in_init_guard(model, call: Call) -> bool:
    """Inside ``if x is None:`` / ``if not x:``: one-time initialisation, which other threads
    must wait for anyway."""
    for node in chain(model, model.functions[call.function].node, call.node):
        if isinstance(node, cst.If) and _unset_test(node.test):
            return True
    return False


def _unset_test(test: cst.BaseExpression) -> bool:
    if isinstance(test, cst.BooleanOperation):
        return _unset_test(test.left) or _unset_test(test.right)
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        return isinstance(test.expression, (cst.Name, cst.Attribute))
    if isinstance(test, cst.Comparison) and len(test.comparisons) == 1:
        comp = test.comparisons[0]
        return (
            isinstance(comp.operator, cst.Is)
            and isinstance(comp.comparator, cst.Name)
            and comp.comparator.value == "None"
            and isinstance(test.left, (cst.Name, cst.Attribute))
        )
    return False


def _lock_text(ctx: RuleContext, held: HeldLock) -> str:
    return ctx.code(held.node.func.value) if _is_acquire(held) else ctx.code(held.node)


def _released(ctx: RuleContext, model, function: str) -> set[str]:
    """Locks released in a ``finally:`` block of ``function`` (a critical section, not a gate)."""
    info = model.functions[function]
    finder = _FinallyReleases()
    info.node.visit(finder)
    return {"".join(ctx.code(node.func.value).split()) for node in finder.calls}


class _FinallyReleases(cst.CSTVisitor):
    def __init__(self) -> None:
        self.depth = 0
        self.calls: list[cst.Call] = []

    def visit_Finally(self, node: cst.Finally) -> None:
        self.depth += 1

    def leave_Finally(self, original_node: cst.Finally) -> None:
        self.depth -= 1

    def visit_Call(self, node: cst.Call) -> None:
        if self.depth and isinstance(node.func, cst.Attribute) and node.func.attr.value == "release":
            self.calls.append(node)


def _region(ctx: RuleContext, held: HeldLock, released: set[str]) -> bool:
    """A ``with`` block, or ``acquire()`` with its ``release()`` in ``finally:``. A lock taken
    bare and released elsewhere or later is used as a gate between threads, not a critical section."""
    if held.via == "with" or not _is_acquire(held):
        return True
    return "".join(ctx.code(held.node.func.value).split()) in released


def _is_acquire(held: HeldLock) -> bool:
    return held.via == "acquire" and isinstance(held.node, cst.Call) and isinstance(held.node.func, cst.Attribute)


def _excludes(held: HeldLock) -> bool:
    if held.kind is not None:
        return held.kind in ("Lock", "RLock", "Condition")
    last = held.ref.rsplit(".", 1)[-1].rsplit(":", 1)[-1]
    return not SEMAPHORE_NAME.search(last)


def _callee_text(ctx: RuleContext, call: Call) -> str:
    text = ctx.code(call.node.func)
    return f"{text}()" if len(text) < 60 else f"{call.attr or 'call'}()"


def _has_timeout(node: cst.Call, positional_index: int) -> bool:
    for i, arg in enumerate(node.args):
        if arg.keyword is not None and arg.keyword.value in ("timeout", "block", "blocking"):
            return True
        if arg.keyword is None and not arg.star and i >= positional_index:
            only_block = isinstance(arg.value, cst.Name) and arg.value.value == "True" and len(node.args) == 1
            return not only_block
    return False


SOCKET_MAKERS = frozenset({"socket.socket", "socket.create_connection", "socket.fromfd", "ssl.wrap_socket"})
SOCKET_IO = frozenset({"recv", "recv_into", "recvfrom", "recvfrom_into", "recvmsg", "sendall", "sendto", "sendmsg",
                       "sendfile", "accept", "connect"})


_SOCKETS: "weakref.WeakKeyDictionary[object, frozenset[str]]" = weakref.WeakKeyDictionary()


def _socket_refs(model) -> frozenset[str]:
    """Refs bound to a socket: built by ``socket.socket(...)``/``create_connection(...)``/
    ``wrap_socket(...)``, or returned by a function of this module annotated ``-> socket.socket``
    or returning such a ref (``sock = self._connect()``)."""
    cached = _SOCKETS.get(model)
    if cached is not None:
        return cached
    returns_socket: set[str] = set()
    for fn in model.functions.values():
        node = fn.node
        if isinstance(node, cst.FunctionDef) and node.returns is not None:
            text = dotted(node.returns.annotation) or ""
            if text in ("socket", "socket.socket", "ssl.SSLSocket", "SSLSocket"):
                returns_socket.add(fn.qualname)
    refs: set[str] = set()
    for _ in range(3):
        for acc in model.accesses:
            if acc.kind != "write" or acc.ref in refs:
                continue
            if _unpacked_socket(model, acc):
                refs.add(acc.ref)
                continue
            value = assigned_value(acc)
            if not isinstance(value, cst.Call):
                continue
            call = call_at(model, value)
            if call is None:
                continue
            if (call.qualname in SOCKET_MAKERS or call.attr == "wrap_socket"
                    or (call.callees and all(c in returns_socket for c in call.callees))):
                refs.add(acc.ref)
        for fn in model.functions.values():
            if fn.qualname not in returns_socket and _returns_ref(fn, refs):
                returns_socket.add(fn.qualname)
    if refs:
        _socket_flow(model, refs)
    result = frozenset(refs)
    _SOCKETS[model] = result
    return result


_QUIET: "weakref.WeakKeyDictionary[object, tuple[frozenset[str], frozenset[str]]]" = weakref.WeakKeyDictionary()


def _quiet_sockets(model) -> tuple[frozenset[str], frozenset[str]]:
    """(sockets made non-blocking: ``setblocking(False)``, ``settimeout(0)``; sockets built as
    ``socket.socket(..., socket.SOCK_DGRAM)``), computed once per module."""
    cached = _QUIET.get(model)
    if cached is None:
        nonblocking = frozenset(
            c.receiver for c in model.calls
            if c.receiver and c.attr in ("setblocking", "settimeout") and c.node.args
            and isinstance(c.node.args[0].value, (cst.Name, cst.Integer))
            and getattr(c.node.args[0].value, "value", None) in ("False", "0", "0.0")
        )
        datagram = set()
        for acc in model.accesses:
            value = assigned_value(acc) if acc.kind == "write" else None
            if isinstance(value, cst.Call) and any((dotted(a.value) or "").endswith("SOCK_DGRAM") for a in value.args):
                datagram.add(acc.ref)
        cached = _QUIET[model] = (nonblocking, frozenset(datagram))
    return cached


def _socket_flow(model, refs: set[str]) -> None:
    """Follow sockets into containers (``peers[name] = sock``, ``conns.append(sock)``), out of
    them in ``for`` loops (``for name, sock in peers.items()``) and into the parameters of the
    module's functions they are passed to (``_send(sock, msg)``)."""
    for _ in range(3):
        size = len(refs)
        containers = {acc.ref for acc in model.accesses if _stores_socket(model, acc, refs)}
        if containers:
            for fn in model.functions.values():
                for loop in _for_loops(fn.node):
                    if _name_ref(model, fn.qualname, _container_of(loop.iter)) in containers:
                        target = loop.target
                        if isinstance(target, cst.Tuple) and len(target.elements) == 2 and _items(loop.iter):
                            target = target.elements[1].value
                        if isinstance(target, cst.Name):
                            refs.add(f"l:{fn.qualname}.{target.value}")
        for spawn in model.spawns:
            for arg, param in spawn_arg_params(model, spawn):
                if _name_ref(model, spawn.function, arg) in refs:
                    refs.add(param)
        for call in model.calls:
            if len(call.callees) != 1 or call.callees[0] not in model.functions:
                continue
            callee = model.functions[call.callees[0]]
            params = list(callee.params)
            if callee.class_name and params and params[0] in ("self", "cls") and isinstance(call.node.func, cst.Attribute):
                params = params[1:]
            for param, arg in zip(params, call.node.args):
                if arg.keyword is None and arg.star == "" and _name_ref(model, call.function, arg.value) in refs:
                    refs.add(f"l:{callee.qualname}.{param}")
        if len(refs) == size:
            return


def _unpacked_socket(model, acc) -> bool:
    """``conn, addr = listener.accept()`` (``conn``), ``a, b = socket.socketpair()`` (both)."""
    statement = acc.statement
    if not isinstance(statement, cst.SimpleStatementLine):
        return False
    for small in statement.body:
        if not isinstance(small, cst.Assign) or len(small.targets) != 1:
            continue
        target, value = small.targets[0].target, small.value
        if not (isinstance(target, (cst.Tuple, cst.List)) and target.elements and isinstance(value, cst.Call)):
            continue
        names = [el.value for el in target.elements]
        if isinstance(value.func, cst.Attribute) and value.func.attr.value == "accept" and not value.args:
            return names[0] is acc.node
        call = call_at(model, value)
        if call is not None and call.qualname == "socket.socketpair":
            return any(n is acc.node for n in names)
    return False


def _name_ref(model, function: str, expr: cst.BaseExpression | None) -> str | None:
    if expr is None:
        return None
    found = ref_at(model, expr)
    if found is None and isinstance(expr, cst.Name):
        found = f"l:{function}.{expr.value}"
    return found


def _stores_socket(model, acc, refs: set[str]) -> bool:
    """``acc`` puts a socket into the container it names: ``c[k] = sock``, ``c.append(sock)``."""
    if acc.kind == "item-write":
        value = assigned_value(acc)
        return value is not None and _name_ref(model, acc.function, value) in refs
    if acc.kind == "mutate" and isinstance(acc.node, cst.Call) and isinstance(acc.node.func, cst.Attribute):
        return acc.node.func.attr.value in ("append", "add", "appendleft", "insert") and any(
            _name_ref(model, acc.function, a.value) in refs for a in acc.node.args
        )
    return False


def _container_of(expr: cst.BaseExpression) -> cst.BaseExpression:
    """``c`` in ``c``, ``c.values()``, ``c.items()``, ``list(c.items())``."""
    if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Name) and expr.func.value in ("list", "tuple", "sorted") and expr.args:
        expr = expr.args[0].value
    if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and expr.func.attr.value in ("values", "items"):
        return expr.func.value
    return expr


def _items(expr: cst.BaseExpression) -> bool:
    if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Name) and expr.args:
        expr = expr.args[0].value
    return isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and expr.func.attr.value == "items"


def _for_loops(root: cst.CSTNode) -> list[cst.For]:
    """The ``for`` statements of a function's own body (nested definitions left out)."""
    found: list[cst.For] = []

    class Loops(OwnBodyVisitor):
        def visit_For(self, node: cst.For) -> None:
            found.append(node)

    (root.body if isinstance(root, cst.FunctionDef) else root).visit(Loops())
    return found


def _serialises(model, lock: str, sock: str) -> bool:
    """Every function that takes ``lock`` does I/O on ``sock`` while holding it: the lock
    exists to keep whole messages from interleaving on the socket (a write lock), and
    waiting for it is waiting for the socket."""
    takers = {a.function for a in model.acquires if a.ref == lock}
    return bool(takers) and all(
        any((c.attr in SOCKET_IO or _stream_file_io(c)) and c.receiver == sock and any(h.ref == lock for h in c.held)
            for c in model.functions[f].calls)
        for f in takers
    )


STREAM_FILES = frozenset({"wfile", "rfile"})
FILE_IO = frozenset({"write", "writelines", "flush", "read", "readline", "readlines"})


def _stream_file_io(call: Call) -> bool:
    """``handler.wfile.write(...)``: the file ``socketserver``'s stream handlers wrap their
    socket in (``rfile``/``wfile``), read or written."""
    return call.attr in FILE_IO and (call.receiver or "").rsplit(".", 1)[-1] in STREAM_FILES


def _returns_ref(fn, refs: set[str]) -> bool:
    """Every ``return`` of ``fn`` gives one of ``refs`` (and it has at least one)."""
    returns = [a for a in fn.accesses if a.kind == "read" and isinstance(a.statement, cst.SimpleStatementLine)
               and any(isinstance(s, cst.Return) and s.value is a.node for s in a.statement.body)]
    return bool(returns) and all(a.ref in refs for a in returns)


def _blocking(model, call: Call) -> str | None:
    qual = call.qualname or ""
    node = call.node
    if _stream_file_io(call):
        if call.held and all(_serialises(model, h.ref, call.receiver) for h in call.held):
            return None
        return "does network I/O on a socket"
    if call.attr in SOCKET_IO and call.receiver and call.receiver in _socket_refs(model):
        if call.held and all(_serialises(model, h.ref, call.receiver) for h in call.held):
            return None
        nonblocking, datagram = _quiet_sockets(model)
        if call.attr == "connect" and call.receiver in datagram:
            return None  # a UDP connect() only picks the default peer: nothing goes out
        if call.receiver in nonblocking:
            return None  # ``sock.setblocking(False)``: it raises instead of waiting
        return "does network I/O on a socket"
    if qual in BLOCKING:
        if qual == "time.sleep" and node.args and isinstance(node.args[0].value, cst.Integer) and node.args[0].value.value == "0":
            return None
        return BLOCKING[qual]
    if qual.startswith("subprocess.Popen") and call.attr in ("communicate", "wait"):
        return "waits for a subprocess"
    kind = call.receiver_kind
    if call.attr == "join" and call.receiver in model.thread_vars and not _has_timeout(node, 0):
        return JOIN
    if kind in ("Queue", "SimpleQueue") and call.attr == "get" and not _has_timeout(node, 0):
        return GET
    if kind in ("Queue",) and call.attr == "join":
        return QUEUE_JOIN
    if kind == "Event" and call.attr == "wait" and not _has_timeout(node, 0):
        return EVENT_WAIT
    if call.attr == "result" and _future(model, call) and not _literal_timeout(node):
        return FUTURE_RESULT
    return None


_FUTURE_NAME = re.compile(r"(^|_)fut(ure)?$", re.IGNORECASE)


def _future(model, call: Call) -> bool:
    """``future.result()``: the receiver is a future the module's executor returned, or a
    name that says so (``future``, ``fut``, ``self._upload_future``)."""
    receiver = call.receiver or ""
    func = call.node.func
    name = func.value.attr.value if isinstance(func.value, cst.Attribute) else getattr(func.value, "value", "")
    submitted = bool(receiver) and any(s.bound_to == receiver and s.kind == "submit" for s in model.spawns)
    if not submitted and not (isinstance(name, str) and _FUTURE_NAME.search(name)):
        return False
    return not _finished_before(model, call)


def _finished_before(model, call: Call) -> bool:
    """The future is done by then: the function is handed it (a done callback's argument),
    already asked it (``fut.exception()``, ``if fut.done()``), or waited for something first
    (``as_completed``, ``completion_event.wait()``)."""
    fn = model.functions[call.function]
    text = dotted(call.node.func.value) or ""
    if text.split(".", 1)[0] in fn.params[1 if fn.self_name else 0:]:
        return True
    for other in fn.calls:
        if other is call:
            break
        if other.attr in ("exception", "done", "result", "add_done_callback") and dotted(other.node.func.value) == text:
            return True
        if other.attr in ("wait", "wait_for", "join", "as_completed") or (other.qualname or "").endswith(("as_completed", ".wait")):
            return True
    return False


def _literal_timeout(node: cst.Call) -> bool:
    """A time-out given as a number (a name may hold None: no time-out)."""
    for i, arg in enumerate(node.args):
        if (arg.keyword is not None and arg.keyword.value == "timeout") or (arg.keyword is None and i == 0):
            return isinstance(arg.value, (cst.Integer, cst.Float))
    return False
