"""Blocks, prompt rendering and answer parsing (no model needed)."""

import textwrap

import pytest

from advisor.engine import check_source
from advisor.llm.blocks import corresponding_block, defined_names, enclosing_block, splice
from advisor.llm.prompts import advice_messages, answer_text, parse_answer, rule_documentation

SOURCE = textwrap.dedent(
    '''\
    import threading


    def work(n):
        return n * 2


    class Pool:
        def __init__(self):
            self.lock = threading.Lock()

        @staticmethod
        def run_all(items):
            threads = [threading.Thread(target=work, args=(i,)) for i in items]
            for t in threads:
                t.run()
            return threads


    def outer():
        def inner():
            t = threading.Thread(target=work, args=(1,))
            t.run()
        return inner


    t = threading.Thread(target=work, args=(2,))
    print("starting")
    t.run()
    if __name__ == "__main__":
        outer()()
    '''
)


def _finding(line):
    found = [f for f in check_source(SOURCE, "pool.py").findings if f.span.line == line]
    assert found, f"no finding on line {line}"
    return found[0]


def test_method_block_includes_decorator_and_is_dedented():
    block = enclosing_block(SOURCE, 16)
    assert (block.start, block.end, block.kind, block.name) == (12, 17, "function", "Pool.run_all")
    assert block.indent == "    "
    assert block.text.splitlines()[0] == "@staticmethod"
    assert block.text.splitlines()[-1] == "    return threads"


def test_nested_function_is_the_innermost_def():
    block = enclosing_block(SOURCE, 23)
    assert (block.start, block.end, block.name) == (21, 23, "outer.inner")


def test_module_level_finding_gets_the_run_of_simple_statements():
    block = enclosing_block(SOURCE, 29)
    assert block.kind == "statements"
    assert (block.start, block.end) == (27, 29)


def test_long_function_is_narrowed_to_the_statement():
    body = "\n".join(f"    x{i} = {i}" for i in range(80))
    src = f"import threading\n\ndef big(t):\n{body}\n    for _ in range(3):\n        t.run()\n"
    block = enclosing_block(src, 85)
    assert block.kind == "statements"
    assert (block.start, block.end) == (84, 85)


def test_unparsable_source_has_no_block():
    assert enclosing_block("def f(:\n", 1) is None


def test_numbered_lines_carry_file_line_numbers():
    block = enclosing_block(SOURCE, 23)
    assert block.numbered().splitlines() == [
        "21 | def inner():",
        "22 |     t = threading.Thread(target=work, args=(1,))",
        "23 |     t.run()",
    ]


def test_splice_reindents_and_keeps_the_rest():
    block = enclosing_block(SOURCE, 16)
    new = splice(SOURCE, block, "@staticmethod\ndef run_all(items):\n    return []\n")
    lines = new.splitlines()
    assert lines[11:14] == ["    @staticmethod", "    def run_all(items):", "        return []"]
    assert lines[:11] == SOURCE.splitlines()[:11]
    assert lines[14:] == SOURCE.splitlines()[17:]


def test_defined_names_covers_bindings_and_parameters():
    names = defined_names("import os\nfrom a import b as c\nx, *y = 1, 2\nfor i in z:\n    w = 1\nwith m() as h:\n    pass\n"
                          "def f(p, *a, k=1, **kw):\n    inner = 1\nclass C:\n    attr = 1\nif (n := 3):\n    pass\n")
    assert names == {"os", "c", "x", "y", "i", "w", "h", "f", "f(p)", "f(a)", "f(k)", "f(kw)", "C", "n"}
    assert defined_names("def (") is None


def test_messages_hold_rule_doc_finding_and_numbered_block():
    f = _finding(23)
    system, user = advice_messages(f, SOURCE)
    assert system["role"] == "system" and "fenced code block" in system["content"]
    assert user["role"] == "user"
    text = user["content"]
    assert f"Rule {f.code} ({f.name})" in text
    assert rule_documentation(f.code).splitlines()[0] in text
    assert "Why is this bad?" in text
    assert f"pool.py:23: {f.message}" in text
    assert "23 |     t.run()" in text
    assert "${" not in text


def test_answer_round_trips_through_parse():
    code = "def inner():\n    t = threading.Thread(target=work, args=(1,))\n    t.start()"
    text = answer_text("It runs on the caller.", code)
    parsed = parse_answer(text)
    assert parsed.explanation == "It runs on the caller."
    assert parsed.code == code


@pytest.mark.parametrize(
    "raw, code",
    [
        ("Because.\n```\nx = 1\n```\n", "x = 1"),
        ("Because.\n```python\nx = 1\ny = 2", "x = 1\ny = 2"),
        ("Because.\n```python\n12 | x = 1\n13 |     y = 2\n```", "x = 1\n    y = 2"),
        ("Because.\n~~~py\nx = 1\n~~~\ntrailing", "x = 1"),
        ("no code at all", None),
    ],
)
def test_parse_answer_is_tolerant(raw, code):
    parsed = parse_answer(raw)
    assert parsed.code == code
    assert parsed.explanation.startswith(("Because.", "no code"))


def test_parse_answer_strips_terminal_escapes():
    parsed = parse_answer("\x1b[31mRed\x1b[0m alert\x07.\n```python\nx = '\x1b]0;title\x07'\n```")
    assert parsed.explanation == "Red alert."
    assert "\x1b" not in parsed.code and "\x07" not in parsed.code


def test_corresponding_block_finds_the_fixed_function():
    block = enclosing_block(SOURCE, 16)
    fixed = SOURCE.replace("t.run()", "t.start()")
    text = corresponding_block(fixed, block)
    assert text.startswith("@staticmethod\ndef run_all(items):")
    assert "t.start()" in text and "class Pool" not in text
    assert corresponding_block("x = 1\n", block) == "x = 1"


def test_prompt_identity_changes_exactly_when_the_prompt_would():
    from advisor.llm.prompts import prompt_identity

    f = _finding(23)
    block = enclosing_block(SOURCE, 23)
    same = prompt_identity(f, block)
    assert same == prompt_identity(_finding(23), enclosing_block(SOURCE, 23))
    moved = enclosing_block(SOURCE.replace("t.run()\n    return inner", "t.run()  \n    return inner"), 23)
    assert prompt_identity(f, moved) != same
    other = _finding(16)
    assert prompt_identity(other, enclosing_block(SOURCE, 16)) != same
