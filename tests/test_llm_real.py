"""End to end with the real SmolLM2 weights: GGUF conversion, int8 generation, verification."""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytest.importorskip("torch")
pytest.importorskip("transformers")

from advisor.engine import check_source  # noqa: E402
from advisor.llm.advice import AdviceOptions, advise  # noqa: E402
from advisor.llm.blocks import enclosing_block  # noqa: E402
from advisor.llm.loader import ModelUnavailable, cache_dir, converted_dir, load_model, resolve_model  # noqa: E402
from advisor.llm.prompts import parse_answer  # noqa: E402
from advisor.llm.verify import verify_block  # noqa: E402

SOURCE = '''\
import threading


class Counter:
    def __init__(self):
        self.lock = threading.Lock()
        self.value = 0

    def add(self):
        self.lock.acquire()
        self.value += 1
        self.lock.release()


def start(counter, workers):
    threads = [threading.Thread(target=counter.add) for _ in range(workers)]
    for t in threads:
        t.run()
    return threads
'''


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    models = cache_dir() / "models"  # converted weights: shared, converted once per machine
    models.mkdir(parents=True, exist_ok=True)
    fresh = tmp_path_factory.mktemp("cache")
    (fresh / "models").symlink_to(models.resolve())
    os.environ["ADVISOR_CACHE"] = str(fresh)  # advice cache: empty
    try:
        spec = resolve_model()
        lm = load_model(adapter="none", quantize="int8")
    except ModelUnavailable as exc:
        pytest.skip(f"real weights unavailable: {exc}")
    yield spec, lm
    os.environ.pop("ADVISOR_CACHE", None)


@pytest.mark.slow
def test_real_weights_convert_generate_and_verify(real):
    spec, lm = real
    folder = converted_dir(spec)
    files = sorted(p.name for p in folder.iterdir())
    assert "model.safetensors" in files and "config.json" in files
    assert not [n for n in files if n.endswith((".bin", ".pt", ".pkl"))]
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")], "temporary conversion dir left behind"
    assert lm.info.parameters > 100_000_000 and lm.info.quantize == "int8"

    findings = check_source(SOURCE, "counter.py").findings
    assert findings, "the example must produce findings"
    run = advise(findings, {"counter.py": SOURCE}, AdviceOptions(max_new_tokens=200), loaded=lm)
    assert run.generated == len(findings) and run.generation.new_tokens > 0
    for f in findings:
        a = f.advice
        assert a["model"] == {"name": "SmolLM2-135M-Instruct", "adapter": None, "hash": spec.hash[:16]}
        assert isinstance(a["explanation"], str) and "\x1b" not in a["explanation"]
        if f.fix is not None:
            assert a["source"] == "rule" and a["verified"], a
        else:
            # the verdict attached must be exactly what verification says about the answer
            block = enclosing_block(SOURCE, f.span.line, f.span.end_line)
            assert a["source"] == "model"
            if a["suggested_code"] is not None:
                again = verify_block(SOURCE, "counter.py", f, block, a["suggested_code"])
                assert again.verified == a["verified"], (again.reason, a["reason"])
            else:
                assert a["verified"] is False
    assert any(f.advice["explanation"] for f in findings)
    # a re-run is served from the cache without generating
    rerun = check_source(SOURCE, "counter.py").findings
    again = advise(rerun, {"counter.py": SOURCE}, AdviceOptions(max_new_tokens=200), loaded=lm)
    assert again.cached == len(rerun) and again.generated == 0
    assert parse_answer("```python\nx = 1\n```").code == "x = 1"
