"""The threading map: threads, functions, shared state, locks, findings; text and Mermaid."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import libcst as cst
import pytest
from click.testing import CliRunner

from advisor.analysis.extract import build_model
from advisor.analysis.model import Span
from advisor.analysis.positions import Positions
from advisor.cli.main import main
from advisor.engine import check_source
from advisor.mapping import MAIN, ThreadMap, build_map, mermaid_text, render_mermaid, render_text
from advisor.rules import Finding

from conftest import ROOT

PROGRAM = textwrap.dedent(
    """\
    import threading
    import time

    hits = 0
    hits_lock = threading.Lock()
    log = []
    LIMIT = 10


    def record(key):
        global hits
        with hits_lock:
            hits += 1
            time.sleep(0.1)
        log.append(key)


    def worker(keys):
        for key in keys[:LIMIT]:
            record(key)


    def report():
        print(hits, len(log))


    def main():
        threads = [threading.Thread(target=worker, args=(["a"],)) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        report()
    """
)


def _map(source: str, path: str = "prog.py", findings=None) -> ThreadMap:
    module = cst.parse_module(source)
    model = build_model(module, path)
    if findings is None:
        findings = check_source(source, path).findings
    return build_map(model, findings, Positions(module).span)


def _line_of(source: str, text: str) -> int:
    return next(i for i, line in enumerate(source.splitlines(), 1) if text in line)


def test_threads_functions_state_and_locks() -> None:
    tmap = _map(PROGRAM)
    threads = {t.id: t for t in tmap.threads}
    assert set(threads) == {MAIN, "worker"}
    assert threads["worker"].many and threads["worker"].started_in == ("main",)
    funcs = {f.qualname: f for f in tmap.functions}
    assert funcs["worker"].threads == ("worker",)
    assert funcs["record"].threads == ("worker",)
    assert funcs["record"].takes == ("g:hits_lock",)
    assert funcs["worker"].calls == ("record",)
    assert funcs["main"].starts == ("worker",)
    assert funcs["report"].threads == (MAIN,)
    assert {s.ref for s in tmap.state} == {"g:hits", "g:log"}
    assert set(tmap.locks) == {"g:hits_lock"} and tmap.locks["g:hits_lock"] == "Lock"
    uses = {(u.function, u.ref): u for u in tmap.uses}
    hits = uses[("record", "g:hits")]
    assert hits.lock_sets == (("g:hits_lock",),) and "rmw" in hits.kinds
    assert hits.lines == (_line_of(PROGRAM, "hits += 1"),)
    appended = uses[("record", "g:log")]
    assert appended.unlocked and appended.writes
    assert uses[("report", "g:hits")].kinds == ("read",)


def test_constants_locks_and_private_locals_are_not_state() -> None:
    tmap = _map(PROGRAM)
    refs = {s.ref for s in tmap.state}
    assert "g:LIMIT" not in refs and "g:hits_lock" not in refs
    assert not any(r.startswith("l:") for r in refs)


def test_findings_are_placed_on_functions_and_accesses() -> None:
    findings = check_source(PROGRAM, "prog.py").findings
    sleep_line = _line_of(PROGRAM, "time.sleep")
    assert any(f.span.line == sleep_line for f in findings), "expected a blocking-call finding"
    append_line = _line_of(PROGRAM, "log.append")
    crafted = Finding("THR999", "crafted", "prog.py", Span(append_line, 4, append_line, 19), "crafted", "")
    tmap = _map(PROGRAM, findings=findings + [crafted])
    record = next(f for f in tmap.functions if f.qualname == "record")
    assert sleep_line in {f.span.line for f in record.findings}
    use = next(u for u in tmap.uses if u.function == "record" and u.ref == "g:log")
    assert [f.code for f in use.findings] == ["THR999"]
    text = render_text(tmap)
    assert f"{sleep_line}:" in text and "THR999" in text


def test_findings_on_thread_objects_mark_the_thread() -> None:
    source = textwrap.dedent(
        """\
        import threading


        def work():
            pass


        def main():
            t = threading.Thread(target=work)
            t.run()
        """
    )
    tmap = _map(source)
    thread = next(t for t in tmap.threads if t.id == "work")
    assert [(f.code, f.span.line) for f in thread.findings] == [("THR001", _line_of(source, "t.run()"))]
    assert "thread: work  started in main  [! THR001]" in render_text(tmap)
    text = render_mermaid(tmap)
    check_mermaid(text)
    thread_id = re.search(r'(t\d+)\(\["thread: work', text).group(1)
    assert thread_id in next(line for line in text.splitlines() if line.startswith("  class ")).split()[1].split(",")


def test_text_rendering_lists_everything() -> None:
    text = render_text(_map(PROGRAM))
    sections = [line for line in text.splitlines() if line and not line.startswith(" ")]
    assert sections[1:] == ["Threads", "Functions", "Shared state", "Locks", "Findings"]
    assert "thread: worker (several)  started in main" in text
    assert f"record line {_line_of(PROGRAM, 'hits += 1')}: read-modify-writes under hits_lock" in text
    assert f"record line {_line_of(PROGRAM, 'log.append')}: mutates with no lock" in text


def test_closure_state_and_pool_tasks() -> None:
    source = textwrap.dedent(
        """\
        from concurrent.futures import ThreadPoolExecutor


        def drain(items):
            results = []

            def collect(x):
                results.append(x * 2)

            with ThreadPoolExecutor(max_workers=2) as pool:
                for item in items:
                    pool.submit(collect, item)
            return results
        """
    )
    tmap = _map(source)
    task = next(t for t in tmap.threads if t.id != MAIN)
    assert task.id == "drain.<locals>.collect" and task.kind == "submit" and task.many
    assert [tmap.name(s.ref) for s in tmap.state] == ["results (in drain)"]
    assert "pool task: drain.<locals>.collect (several)" in render_text(tmap)


# -- Mermaid ---------------------------------------------------------------------------------

_LABEL = r'"(?:[A-Za-z0-9 _.,:\-()/=+]|#\d+;|<br/>)*"'
_ID = r"[tfs]\d+"
_NODE = re.compile(rf"  ({_ID})(?:\(\[{_LABEL}\]\)|\[{_LABEL}\]|\[\({_LABEL}\)\]):::(thread|func|state)")
_LINK = re.compile(rf"  ({_ID}) (?:-->|-\.->)(?:\|{_LABEL}\|)? ({_ID})")
_CLASSDEF = re.compile(r"  classDef (\w+) [\w#:,.-]+")
_CLASS = re.compile(rf"  class ({_ID}(?:,{_ID})*) (\w+)")
_LINKSTYLE = re.compile(r"  linkStyle (\d+(?:,\d+)*) [\w#:,.-]+")


def check_mermaid(text: str) -> dict:
    """A strict structural check of the subset of Mermaid ``render_mermaid`` writes: every
    line is a known statement, labels are quoted and escaped, links join declared nodes,
    classes and link styles refer to what exists."""
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    nodes: dict[str, str] = {}
    links: list[tuple[str, str]] = []
    classdefs: set[str] = set()
    for line in lines[1:]:
        if m := _CLASSDEF.fullmatch(line):
            classdefs.add(m.group(1))
        elif m := _NODE.fullmatch(line):
            assert m.group(1) not in nodes, f"duplicate node {m.group(1)}"
            assert m.group(2) in classdefs
            nodes[m.group(1)] = line
        elif m := _LINK.fullmatch(line):
            assert m.group(1) in nodes and m.group(2) in nodes, line
            links.append((m.group(1), m.group(2)))
        elif m := _CLASS.fullmatch(line):
            assert m.group(2) in classdefs
            assert all(i in nodes for i in m.group(1).split(","))
        elif m := _LINKSTYLE.fullmatch(line):
            assert all(int(i) < len(links) for i in m.group(1).split(","))
        else:
            raise AssertionError(f"not a statement render_mermaid may write: {line!r}")
    return {"nodes": nodes, "links": links}


@pytest.mark.parametrize(
    "bad",
    [
        'flowchart LR\n  t0["a"b"]:::thread\n',
        'flowchart LR\n  classDef thread fill:#fff\n  t0(["a"]):::thread\n  t0 --> f1\n',
        'flowchart LR\n  classDef thread fill:#fff\n  t0(["a"]):::thread\n  linkStyle 0 stroke:#f00\n',
        'graph TD\n',
    ],
)
def test_mermaid_checker_rejects_broken_diagrams(bad: str) -> None:
    with pytest.raises(AssertionError):
        check_mermaid(bad)


def test_mermaid_is_well_formed_and_shows_the_map() -> None:
    tmap = _map(PROGRAM)
    text = render_mermaid(tmap)
    parsed = check_mermaid(text)
    kinds = [line.split(":::")[-1] for line in parsed["nodes"].values()]
    assert kinds.count("thread") == 2 and kinds.count("state") == 2 and kinds.count("func") == len(tmap.functions)
    assert '|"read-modify-writes under hits_lock"|' in text
    assert re.search(r't\d+\(\["thread: worker \(several\)"\]\)', text)
    assert "-.->|\"starts\"|" in text


def test_mermaid_marks_findings() -> None:
    tmap = _map(PROGRAM)
    text = render_mermaid(tmap)
    check_mermaid(text)
    marked = [f for f in tmap.functions if f.findings]
    assert marked
    class_line = next(line for line in text.splitlines() if line.startswith("  class "))
    record_id = re.search(r'(f\d+)\["record\(\)', text).group(1)
    assert record_id in class_line.split()[1].split(",")
    assert "#9888; THR016" in text


def test_mermaid_escapes_hostile_text() -> None:
    hostile = 'a"b]|c<script>%%{init}`x`#1;\n'
    escaped = mermaid_text(hostile)
    assert not set(escaped) & set('"]|<>%{}`\n')
    assert "#34;" in escaped and "#60;" in escaped and "#35;1#59;" in escaped


def test_mermaid_escapes_unicode_and_locals_names() -> None:
    source = textwrap.dedent(
        """\
        import threading

        compte_données = []
        verrou = threading.Lock()


        def départ():
            def tâche():
                with verrou:
                    compte_données.append(1)

            threading.Thread(target=tâche).start()
        """
    )
    text = render_mermaid(_map(source))
    check_mermaid(text)
    assert "d#233;part.#60;locals#62;.t#226;che" in text
    assert "compte_donn#233;es" in text


def test_empty_program_has_a_valid_map() -> None:
    tmap = _map("x = 1\n")
    assert [t.id for t in tmap.threads] == [MAIN] and not tmap.functions and not tmap.state
    check_mermaid(render_mermaid(tmap))
    assert "(no state shared with a thread)" in render_text(tmap)


# -- CLI -------------------------------------------------------------------------------------


def test_cli_map_text_and_mermaid(tmp_path: Path) -> None:
    path = tmp_path / "prog.py"
    path.write_text(PROGRAM, encoding="utf-8")
    res = CliRunner().invoke(main, ["map", str(path)])
    assert res.exit_code == 0, res.output
    assert res.output == render_text(_map(PROGRAM, str(path)))
    res = CliRunner().invoke(main, ["map", "--format", "mermaid", str(path)])
    assert res.exit_code == 0
    check_mermaid(res.output)


def test_cli_map_bad_input(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("import threading\ndef f(:\n", encoding="utf-8")
    res = CliRunner().invoke(main, ["map", str(broken)])
    assert res.exit_code == 1
    assert f"{broken}:2: error: syntax error" in res.stderr
    res = CliRunner().invoke(main, ["map", str(tmp_path / "missing.py")])
    assert res.exit_code == 1 and "no such file" in res.stderr
    binary = tmp_path / "bin.py"
    binary.write_bytes(b"\x00\x01\x02")
    res = CliRunner().invoke(main, ["map", str(binary)])
    assert res.exit_code == 1 and "binary file" in res.stderr
    res = CliRunner().invoke(main, ["map", "--format", "dot", str(broken)])
    assert res.exit_code == 2


def test_subprocess_map_on_an_example() -> None:
    example = ROOT / "examples" / "bank.py"
    if not example.exists():
        pytest.skip("examples/bank.py not present")
    proc = subprocess.run(
        [sys.executable, "-m", "advisor.cli.main", "map", "--format", "mermaid", str(example)],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    parsed = check_mermaid(proc.stdout)
    assert any(":::thread" in n and "main thread" in n for n in parsed["nodes"].values())
