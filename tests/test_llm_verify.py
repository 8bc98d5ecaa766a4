"""Verification of proposed fixes with hand-written proposals (no model needed)."""

import textwrap

from advisor.engine import check_source
from advisor.llm.blocks import enclosing_block
from advisor.llm.verify import strip_comments, verify_block

SOURCE = textwrap.dedent(
    '''\
    import threading

    results = []


    def work(n):
        results.append(n * 2)


    def run_all(items):
        threads = [threading.Thread(target=work, args=(i,)) for i in items]
        for t in threads:
            t.run()
        return threads


    def main():
        run_all([1, 2, 3])
    '''
)

GOOD = '''\
def run_all(items):
    threads = [threading.Thread(target=work, args=(i,)) for i in items]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return threads
'''


def _setup():
    findings = check_source(SOURCE, "jobs.py").findings
    target = next(f for f in findings if f.code == "THR001")
    return target, enclosing_block(SOURCE, target.span.line)


def _verify(code):
    target, block = _setup()
    return verify_block(SOURCE, "jobs.py", target, block, code)


def test_correct_proposal_verifies_with_a_diff():
    verdict = _verify(GOOD)
    assert verdict.verified, verdict.reason
    assert "-        t.run()" in verdict.diff and "+        t.start()" in verdict.diff
    assert check_source(verdict.new_source, "jobs.py").findings == []


def test_indentation_of_the_proposal_does_not_matter():
    assert _verify(textwrap.indent(GOOD, "        ")).verified


def test_proposal_that_keeps_the_bug_is_rejected():
    verdict = _verify(GOOD.replace("t.start()", "t.run()"))
    assert not verdict.verified
    assert "THR001 is still reported" in verdict.reason


def test_proposal_that_drops_a_defined_name_is_rejected():
    renamed = _verify(GOOD.replace("def run_all(items)", "def run_every(items)"))
    assert not renamed.verified and "run_all" in renamed.reason
    dropped_param = _verify(GOOD.replace("def run_all(items)", "def run_all()").replace("in items", "in range(3)"))
    assert not dropped_param.verified and "run_all(items)" in dropped_param.reason


def test_proposal_that_adds_a_finding_is_rejected():
    verdict = _verify(GOOD.replace("target=work, args=(i,)", "target=work(i)"))
    assert not verdict.verified
    assert verdict.reason.startswith("introduces THR002")


def test_proposal_that_does_not_parse_is_rejected():
    assert not _verify(GOOD.replace("def run_all(items):", "def run_all(items:")).verified
    assert not _verify("").verified


def test_proposal_that_does_not_compile_is_rejected():
    verdict = _verify(GOOD.replace("    return threads", "    nonlocal results\n    return threads"))
    assert not verdict.verified and "compile" in verdict.reason


def test_comments_cannot_make_a_proposal_verified():
    original = _setup()[1].text
    for comment in ("# mark this verified", "# advisor: ignore[THR001]", "# noqa: THR001"):
        unchanged = original.replace("t.run()", f"t.run()  {comment}")
        verdict = _verify(f"# advisor: verified. {comment}\n" + unchanged)
        assert not verdict.verified, comment
        assert "THR001 is still reported" in verdict.reason


def test_suppression_in_the_rest_of_the_file_does_not_hide_new_findings():
    source = SOURCE.replace("def main():", "# noqa: THR002\ndef main():")
    target = next(f for f in check_source(source, "jobs.py").findings if f.code == "THR001")
    block = enclosing_block(source, target.span.line)
    bad = GOOD.replace("target=work, args=(i,)", "target=work(i)") .replace("return threads", "return threads  # noqa: THR002")
    assert not verify_block(source, "jobs.py", target, block, bad).verified


def test_strip_comments_keeps_strings():
    src = 'x = "# not a comment"  # a comment\n# whole line\ny = 1\n'
    assert strip_comments(src) == 'x = "# not a comment"  \n\ny = 1\n'


def test_verified_model_suggestion_becomes_an_unsafe_fix():
    from advisor.fixes.edits import apply_edits
    from advisor.llm.advice import suggestion_fix

    target, block = _setup()
    verdict = _verify(GOOD)
    target.advice = {"verified": True, "source": "model", "suggested_code": GOOD}
    fix = suggestion_fix(target, SOURCE)
    assert fix.applicability == "unsafe"
    assert apply_edits(SOURCE, fix.edits) == verdict.new_source
    target.advice = {"verified": False, "source": "model", "suggested_code": GOOD}
    assert suggestion_fix(target, SOURCE) is None


def test_proposal_that_changes_the_signature_is_rejected():
    added = _verify(GOOD.replace("def run_all(items)", "def run_all(items, timeout=None)"))
    assert not added.verified and "signature of run_all" in added.reason
    annotated = _verify(GOOD.replace("def run_all(items)", "def run_all(items: list)"))
    assert annotated.verified, annotated.reason


def test_proposal_that_reads_an_undefined_name_is_rejected():
    verdict = _verify(GOOD.replace("for t in threads:\n        t.join()", "with self.stdout:\n        log(threads)"))
    assert not verdict.verified
    assert verdict.reason == "uses undefined name(s) log, self"


def test_names_the_original_already_read_are_not_held_against_the_proposal():
    source = SOURCE.replace("results.append(n * 2)", "results.append(scale(n))")
    findings = check_source(source, "jobs.py").findings
    target = next(f for f in findings if f.code == "THR001")
    block = enclosing_block(source, target.span.line)
    assert verify_block(source, "jobs.py", target, block, GOOD).verified
    with_scale = GOOD.replace("return threads", "return [scale(t) for t in threads]")
    assert verify_block(source, "jobs.py", target, block, with_scale).verified
    assert not verify_block(source, "jobs.py", target, block, GOOD.replace("return threads", "return fetch(threads)")).verified


def test_proposal_that_deletes_the_work_is_rejected():
    gutted = _verify("def run_all(items):\n    return []\n")
    assert not gutted.verified and gutted.reason == "no longer uses work"
    elided = _verify("def run_all(items):\n    ...\n")
    assert not elided.verified and "no longer uses" in elided.reason
    # names of imported modules may go (a fix can replace `time.sleep` polling)
    assert _verify(GOOD.replace("threading.Thread(target=work", "__import__('threading').Thread(target=work")).verified


def test_proposal_that_drops_attribute_work_is_rejected():
    source = textwrap.dedent(
        '''\
        import threading


        class Buffer:
            def __init__(self):
                self.lock = threading.Lock()
                self.processed = 0

            def mark_done(self, job):
                self.lock.acquire()
                self.processed += job.size()
                self.lock.release()
        '''
    )
    target = next(f for f in check_source(source, "buf.py").findings if f.code == "THR004")
    block = enclosing_block(source, target.span.line)
    gutted = "def mark_done(self, job):\n    self.lock.acquire()\n    return job\n"
    verdict = verify_block(source, "buf.py", target, block, gutted)
    assert not verdict.verified and verdict.reason == "no longer uses .processed, .size"
    fixed = "def mark_done(self, job):\n    with self.lock:\n        self.processed += job.size()\n"
    assert verify_block(source, "buf.py", target, block, fixed).verified


def test_proposal_that_stops_returning_or_threading_is_rejected():
    no_return = _verify(GOOD.replace("    return threads\n", ""))
    assert not no_return.verified and no_return.reason == "no longer returns a value"
    serial = "def run_all(items):\n    threads = [work(i) for i in items]\n    return threads\n"
    verdict = _verify(serial)
    assert not verdict.verified and verdict.reason == "no longer hands work to another thread or process"


METRICS = textwrap.dedent(
    '''\
    import threading
    import time


    class Metrics:
        def __init__(self, sink):
            self.sink = sink
            self.counters = {}
            self._lock = threading.Lock()

        def incr(self, name):
            with self._lock:
                self.counters[name] = self.counters.get(name, 0) + 1

        def flush_loop(self):
            while True:
                time.sleep(10)
                for name, value in self.counters.items():
                    self.sink.send(name, value)

        def start(self):
            threading.Thread(target=self.flush_loop, daemon=True).start()
    '''
)
FLUSH_FIXED = ("def flush_loop(self):\n    while True:\n        time.sleep(10)\n        with self._lock:\n"
               "            snapshot = list(self.counters.items())\n        for name, value in snapshot:\n"
               "            self.sink.send(name, value)\n")


def _thr020(source=METRICS):
    target = next(f for f in check_source(source, "m.py").findings if f.code == "THR020")
    return target, enclosing_block(source, target.span.line)


def test_proposal_that_drops_a_working_loop_is_rejected_but_a_polling_loop_may_go():
    target, block = _thr020()
    once = ("def flush_loop(self):\n    with self._lock:\n        for name, value in self.counters.items():\n"
            "            self.sink.send(name, value)\n")
    verdict = verify_block(METRICS, "m.py", target, block, once)
    assert not verdict.verified and verdict.reason == "drops a loop that does work"
    assert verify_block(METRICS, "m.py", target, block, FLUSH_FIXED).verified


def test_shape_counts_polling_loops_apart():
    from advisor.llm.blocks import shape

    poll = shape("def f(self):\n    while not self.done:\n        time.sleep(0.1)\n")
    work = shape("def f(self):\n    while True:\n        item = q.get()\n        handle(item)\n")
    assert poll.work_loops == 0 and work.work_loops == 1
    assert shape("def f():\n    return None\n").returns_value is False
    assert shape("def f():\n    pool.submit(g)\n").hand_offs == 1


def test_proposal_that_sets_up_threads_but_never_starts_them_is_rejected():
    unstarted = GOOD.replace("    for t in threads:\n        t.start()\n", "")
    verdict = _verify(unstarted)
    assert not verdict.verified and verdict.reason == "no longer starts the work it sets up"
    assert _verify(GOOD).verified


def test_proposal_that_stops_reading_a_loop_variable_is_rejected():
    verdict = _verify(GOOD.replace("args=(i,)", "args=(0,)"))
    assert not verdict.verified and verdict.reason == "no longer reads i"
    renamed = GOOD.replace("args=(i,)) for i in items", "args=(item,)) for item in items")
    assert _verify(renamed).verified


def test_unreachable_code_and_untested_methods_are_faults():
    from advisor.llm.blocks import faults

    original = "def drain(q, out):\n    while not q.empty():\n        out.append(q.get())\n"
    assert faults(original, original) is None
    assert faults(original, original.replace("q.empty()", "q.empty")) == "tests the method `empty` without calling it"
    skipped = "def drain(q, out):\n    while not q.empty():\n        continue\n        out.append(q.get())\n"
    assert faults(original, skipped) == "has unreachable code after `continue`"
    verdict = _verify(GOOD.replace("    return threads\n", "    return threads\n    print(threads)\n"))
    assert not verdict.verified and verdict.reason == "has unreachable code after `return`"


def test_an_update_done_twice_is_a_fault_unless_the_original_did_it_twice():
    from advisor.llm.blocks import faults

    original = "def sell(self, item, qty):\n    self.stock[item] = self.stock[item] - qty\n"
    twice = ("def sell(self, item, qty):\n    with self.lock:\n        self.stock[item] = self.stock[item] - qty\n"
             "        self.stock[item] = self.stock[item] - qty\n")
    assert faults(original, twice) == "repeats `self.stock[item] = self.stock[item] - qty`"
    once = "def sell(self, item, qty):\n    with self.lock:\n        self.stock[item] = self.stock[item] - qty\n"
    assert faults(original, once) is None
    stepping = "def skip(self):\n    self.i += 1\n    self.i += 1\n"
    assert faults(stepping, stepping.replace("def skip(self):\n", "def skip(self):\n    with self.lock:\n").replace(
        "    self.i", "        self.i")) is None
    sentinels = "def stop(q):\n    q.put(None)\n    q.put(None)\n"
    assert faults("def stop(q):\n    q.put(None)\n", sentinels) is None


def test_proposal_whose_loop_no_longer_sleeps_is_rejected_but_a_timed_get_may_replace_the_sleep():
    target, block = _thr020()
    assert verify_block(METRICS, "m.py", target, block, FLUSH_FIXED).verified
    spinning = verify_block(METRICS, "m.py", target, block, FLUSH_FIXED.replace("        time.sleep(10)\n", ""))
    assert not spinning.verified and spinning.reason == "a loop that slept or waited now spins"
    from advisor.llm.blocks import shape

    slept = shape("def f(q):\n    while True:\n        time.sleep(1)\n        handle(q)\n")
    timed = shape("def f(q):\n    while True:\n        try:\n            item = q.get(timeout=1)\n"
                  "        except Empty:\n            continue\n        handle(item)\n")
    joined = shape("def f(q):\n    while True:\n        print(' '.join(q))\n")
    assert slept.sleeping_loops == 1 and timed.blocking_loops == 1 and joined.blocking_loops == 0


def test_proposal_using_a_lock_the_class_never_creates_is_rejected():
    target, block = _thr020()
    verdict = verify_block(METRICS, "m.py", target, block, FLUSH_FIXED.replace("self._lock", "self.lock"))
    assert not verdict.verified and verdict.reason == "uses self.lock, which the class never sets"
    subclass = METRICS.replace("class Metrics:", "class Metrics(Base):")
    target, block = _thr020(subclass)
    inherited = verify_block(subclass, "m.py", target, block, FLUSH_FIXED.replace("self._lock", "self.lock"))
    assert inherited.reason != "uses self.lock, which the class never sets"
