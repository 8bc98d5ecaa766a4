from __future__ import annotations

from typing import Iterable

import libcst as cst

from ..analysis.model import Call, ModuleModel, Spawn
from ._threadctx import assigned_values, function_label
from .base import Finding, Rule, RuleContext
from .thr010_thread_not_joined import CONTAINER_CALLS

WRITE_ATTRS = frozenset({"write", "writelines", "send", "sendall", "sendto", "sendmsg", "writerow", "writerows"})
WRITE_FUNCS = frozenset({"json.dump", "pickle.dump", "marshal.dump", "shutil.copyfileobj"})


class DaemonThreadDataLoss(Rule):
    """
    ## What it does
    Flags daemon threads that drain a queue (or the module's own buffer: a method that
    waits on a `Condition` and takes items out) and write what they take (to a file,
    socket or stream) when nothing waits for them at shutdown: the thread is never joined,
    the queue is never `join()`ed, no code outside the thread waits for an `Event` the
    thread sets when it has drained, and no `atexit` hook is registered. Also flags
    periodic flushers: a daemon thread that wakes every few seconds, empties a buffer other
    code fills (`clear()`, `popleft()`, a fresh `[]`, `taken, self.buf = self.buf, []`) and
    writes it out, when nothing outside the thread ever runs that flush (no final flush at
    shutdown).

    ## Why is this bad?
    The interpreter does not wait for daemon threads: when the main thread finishes they
    are stopped wherever they are. Records still in the queue, lines in a file's buffer and
    half-sent messages are lost without an error, typically the last (most interesting)
    log lines or results before exit.

    ## Example
    ```python
    records = queue.Queue()

    def writer():
        with open("audit.log", "a") as f:
            while True:
                f.write(records.get() + "\\n")

    threading.Thread(target=writer, daemon=True).start()
    ```

    ## Use instead
    ```python
    def writer():
        with open("audit.log", "a") as f:
            while (line := records.get()) is not None:
                f.write(line + "\\n")

    t = threading.Thread(target=writer)
    t.start()
    ...
    records.put(None)   # at shutdown
    t.join()
    ```
    """

    code = "THR017"
    name = "daemon-thread-data-loss"
    summary = "daemon thread writes queued data but is never joined or drained at shutdown: data lost at exit"
    help = "make the thread non-daemon or, at shutdown, signal it (sentinel / Event), then `join()` it (or `queue.join()`), e.g. from an `atexit` hook"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        model = ctx.model
        if _has_shutdown_hook(model):
            return
        for spawn in model.spawns:
            if spawn.kind not in ("thread", "timer", "subclass") or not spawn.targets:
                continue
            if not _is_daemon(model, spawn):
                continue
            found = model.reachable(spawn.targets)
            reach = [f for f in model.functions if f in found]  # source order: the same message every run
            writes = [c for f in reach for c in model.functions[f].calls if _is_write(c)]
            if not writes or _joined(model, spawn) or _done_event_awaited(model, reach):
                continue
            target = spawn.targets[0]
            what = ctx.code(writes[0].node.func)
            gets = [c for f in reach for c in model.functions[f].calls
                    if _is_queue_get(model, c) or _takes_from_buffer(model, c)]
            if gets:
                if _queue_joined(model, gets):
                    continue
                message = (
                    f"daemon thread running `{target}` takes items from a queue and writes them (`{what}`), "
                    "but nothing joins it or the queue at shutdown; pending items are lost when the program exits"
                )
            else:
                buffer = _flushed_buffer(model, reach)
                if buffer is None:
                    continue
                message = (
                    f"daemon thread running `{target}` periodically writes out `{buffer}` (`{what}`), "
                    "but nothing flushes it at shutdown; what was collected since the last flush is lost at exit"
                )
            yield self.finding(ctx, spawn.node, message, function=function_label(spawn.function))


def _true(value: cst.BaseExpression) -> bool:
    return isinstance(value, cst.Name) and value.value == "True"


def _is_daemon(model: ModuleModel, spawn: Spawn) -> bool:
    if spawn.daemon is not None:
        return spawn.daemon
    refs = {ref for ref, s in model.thread_vars.items() if s is spawn}
    if spawn.bound_to:
        refs.add(spawn.bound_to)
    for ref in refs:
        if any(_true(v) for _, v in assigned_values(model, ref + ".daemon")):
            return True
        for call in model.calls:
            if call.attr == "setDaemon" and call.receiver == ref and call.node.args and _true(call.node.args[0].value):
                return True
    if spawn.kind == "subclass":
        for target in spawn.targets:
            cls = model.functions[target].class_name
            if cls and any(_true(v) for _, v in assigned_values(model, f"a:{cls}.daemon")):
                return True
            if cls and any(
                call.attr == "__init__"
                and any(a.keyword is not None and a.keyword.value == "daemon" and _true(a.value) for a in call.node.args)
                for name, info in model.functions.items()
                if info.class_name == cls
                for call in info.calls
            ):
                return True
    return False


def _is_queue_get(model: ModuleModel, call: Call) -> bool:
    """``q.get()`` in a loop: a known queue, or ``get`` called the way only queues are."""
    if call.attr not in ("get", "get_nowait") or call.loop_depth == 0:
        return False
    if call.receiver_kind in ("Queue", "SimpleQueue"):
        return True
    if not isinstance(call.node.func, cst.Attribute) or call.attr == "get_nowait":
        return call.attr == "get_nowait"
    for arg in call.node.args:
        if arg.keyword is None:
            if not (isinstance(arg.value, cst.Name) and arg.value.value in ("True", "False")):
                return False
        elif arg.keyword.value not in ("block", "timeout"):
            return False
    return True


def _takes_from_buffer(model: ModuleModel, call: Call) -> bool:
    """``buffer.take_batch()`` in a loop, where the method waits on a ``Condition`` and then
    takes items out: a queue the module built itself."""
    if call.loop_depth == 0:
        return False
    for callee in call.callees:
        fn = model.functions.get(callee)
        if fn is None:
            continue
        waits = any(c.attr in ("wait", "wait_for") and c.receiver_kind == "Condition" for c in fn.calls)
        takes = any(c.attr in DRAINS and c.receiver for c in fn.calls)
        if waits and takes:
            return True
    return False


def _last(expr: cst.BaseExpression) -> str:
    if isinstance(expr, cst.Attribute):
        return expr.attr.value
    if isinstance(expr, cst.Name):
        return expr.value
    return ""


def _sink_call(call: Call) -> bool:
    """``f.write(...)``, ``sock.sendall(...)``, ``sink.write_lines(...)``..."""
    return call.attr in WRITE_ATTRS or (call.attr or "").startswith(("write_", "send_"))


def _is_write(call: Call) -> bool:
    if _sink_call(call):
        return True
    if call.qualname in WRITE_FUNCS:
        return True
    func = call.node.func
    return isinstance(func, cst.Name) and func.value == "print" and call.qualname is None


DRAINS = frozenset({"clear", "popleft", "popitem", "pop"})
ADDS = frozenset({"append", "appendleft", "extend", "insert", "add", "update", "setdefault"})
SLEEPS = frozenset({"time.sleep", "sleep"})


def _flushed_buffer(model: ModuleModel, reach: list[str]) -> str | None:
    """A periodic flusher: the thread loops with a sleep or timed wait, writes to a sink, and
    empties a shared container (all of it: ``clear()``, ``popleft()``, a fresh ``[]``; not
    ``pop(key)``, which evicts) that code outside the thread fills, and no code outside the
    thread runs that emptying (no flush at shutdown). Returns the container's name."""
    calls = [c for f in reach for c in model.functions[f].calls]
    if not any(c.in_while and (c.qualname in SLEEPS or (c.attr == "wait" and c.node.args)) for c in calls):
        return None
    if not any(_sink_call(c) for c in calls):
        return None  # ``print`` alone: a status line, not a sink
    drainers: dict[str, set[str]] = {}
    for f in reach:
        for c in model.functions[f].calls:
            if c.attr in DRAINS and c.receiver and not c.node.args:
                drainers.setdefault(c.receiver, set()).add(f)
        for a in model.functions[f].accesses:
            if a.kind == "write" and a.statement is not None and _fresh_container(a):
                drainers.setdefault(a.ref, set()).add(f)
    members = set(reach)
    outside = [f for f in model.functions if f not in members]
    filled = sorted({
        a.ref for f in outside for a in model.functions[f].accesses
        if a.ref in drainers and (a.kind in ("item-write", "item-rmw") or (a.kind == "mutate" and _adds(a.node)))
    })
    for ref in filled:
        if not any(model.reachable(c.callees) & drainers[ref] for f in outside for c in model.functions[f].calls):
            return ref.split(":", 1)[1].rsplit(".", 1)[-1]
    return None


def _adds(node: cst.CSTNode) -> bool:
    return isinstance(node, cst.Call) and _last(node.func) in ADDS


def _fresh_container(acc) -> bool:
    """``ref = []`` / ``{}`` / ``dict()``..., or swapped out (``taken, ref = ref, []``): the old
    contents were taken away."""
    for small in acc.statement.body:
        if not isinstance(small, cst.Assign):
            continue
        for t in small.targets:
            value = small.value if t.target is acc.node else _paired(t.target, small.value, acc.node)
            if value is None:
                continue
            if isinstance(value, (cst.List, cst.Dict, cst.Set)) and not value.elements:
                return True
            if isinstance(value, cst.Call) and not value.args and _last(value.func) in CONTAINER_CALLS:
                return True
    return False


def _paired(target: cst.BaseExpression, value: cst.BaseExpression, node: cst.CSTNode) -> cst.BaseExpression | None:
    """The value ``node`` gets in a tuple assignment ``a, node = x, value``."""
    if not (isinstance(target, (cst.Tuple, cst.List)) and isinstance(value, (cst.Tuple, cst.List))):
        return None
    if len(target.elements) != len(value.elements):
        return None
    for t, v in zip(target.elements, value.elements):
        if t.value is node and not isinstance(v, cst.StarredElement):
            return v.value
    return None


def _joined(model: ModuleModel, spawn: Spawn) -> bool:
    """A thread-style ``join()`` anywhere in the module (the thread object may be returned or stored
    under another name before it is joined), except joins of other known threads. A thread
    started as ``Thread(...).start()`` keeps no reference and cannot be joined."""
    if spawn.bound_to is None and any(
        c.attr == "start" and c.statement is not None and c.node.func.value is spawn.node for c in model.calls
    ):
        return False
    for call in model.calls:
        if call.attr != "join" or (call.receiver_kind is not None and call.receiver_kind != "Thread"):
            continue  # ``work_queue.join()`` waits for the queue, not for this thread
        positional = [a.value for a in call.node.args if a.keyword is None]
        if call.receiver in model.thread_vars:
            if model.thread_vars[call.receiver] is spawn or spawn.bound_to is None:
                return True
            continue
        if not positional:
            return True
        value = positional[0]
        if isinstance(value, (cst.Integer, cst.Float)) or (isinstance(value, cst.Name) and "timeout" in value.value.lower()):
            return True
    return False


def _done_event_awaited(model: ModuleModel, reach: list[str]) -> bool:
    """The thread sets an ``Event`` that code outside the thread waits for (``flushed.set()`` in
    the worker, ``flushed.wait(timeout)`` in ``close()``): shutdown waits for the drain."""
    inside = set(reach)
    done = {c.receiver for f in reach for c in model.functions[f].calls
            if c.attr == "set" and c.receiver and c.receiver_kind == "Event"}
    return bool(done) and any(
        c.attr == "wait" and c.receiver in done
        for name, fn in model.functions.items() if name not in inside for c in fn.calls
    )


def _queue_joined(model: ModuleModel, gets: list[Call]) -> bool:
    queues = {c.receiver for c in gets if c.receiver}
    unknown = any(not c.receiver for c in gets)
    for call in model.calls:
        if call.attr == "join" and not call.node.args:
            if call.receiver in queues or (unknown and call.receiver_kind in ("Queue",)):
                return True
    return False


def _has_shutdown_hook(model: ModuleModel) -> bool:
    return any(
        (c.qualname or "").startswith("atexit.register")
        or (c.qualname or "").endswith("_register_atexit")
        or c.attr == "_register_atexit"
        or (c.qualname or "").startswith("weakref.finalize")
        for c in model.calls
    ) or any("atexit.register" in d for fn in model.functions.values() for d in fn.decorators)
