"""Generation, batching, adapters, advice and its cache with a tiny random model of the
SmolLM2 architecture and the real tokenizer."""

import json
import os
import textwrap

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from click.testing import CliRunner  # noqa: E402

from advisor.cli.main import main  # noqa: E402
from advisor.engine import check_source  # noqa: E402
from advisor.llm import advice as advice_mod  # noqa: E402
from advisor.llm.advice import AdviceOptions, advise, answer_key  # noqa: E402
from advisor.llm.generate import Request, answer_complete, generate, generate_reference  # noqa: E402
from advisor.llm.loader import ModelUnavailable, dir_hash, ensure_converted, load_model, resolve_model  # noqa: E402

SOURCE = textwrap.dedent(
    '''\
    import threading

    counter = 0


    def bump():
        global counter
        counter += 1


    def start_all(n):
        threads = [threading.Thread(target=bump) for _ in range(n)]
        for t in threads:
            t.run()
        return threads
    '''
)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    """A 2-layer Llama with SmolLM2's vocabulary and chat template, random weights."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    real = ensure_converted(resolve_model())
    tok = AutoTokenizer.from_pretrained(str(real))
    base = json.loads((real / "config.json").read_text())
    config = LlamaConfig(
        vocab_size=base["vocab_size"], hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
        tie_word_embeddings=True, bos_token_id=base.get("bos_token_id"), eos_token_id=base.get("eos_token_id"),
        pad_token_id=base.get("pad_token_id"),
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    out = tmp_path_factory.mktemp("tiny")
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def tiny(tiny_dir):
    return load_model(str(tiny_dir), adapter="none")


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ADVISOR_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_loads_a_model_directory_with_its_hash(tiny, tiny_dir):
    assert tiny.info.kind == "dir"
    assert tiny.info.hash == dir_hash(tiny_dir)
    assert tiny.info.adapter is None
    assert 3_000_000 < tiny.info.parameters < 4_000_000
    assert tiny.tokenizer.padding_side == "left"
    assert not tiny.model.training


def test_batched_generation_matches_one_at_a_time(tiny):
    prompts = ["Hello", "Explain threading.Lock in Python, please, with an example", "x = 1"]
    requests = [Request(p, max_new_tokens=8) for p in prompts]
    batched, stats = generate(tiny, requests, batch_size=3, stop_early=False)
    single = [generate(tiny, [r], batch_size=1, stop_early=False)[0][0] for r in requests]
    assert batched == single
    assert stats.batches == 1 and stats.sequences == 3
    assert 0 < stats.new_tokens <= 24


def _advice_requests(tok, max_new_tokens=10):
    from advisor.llm.prompts import advice_messages, chat_prompt, finding_block, shared_prefix

    findings = check_source(SOURCE, "bump.py").findings
    requests = []
    for f in findings:
        prompt = chat_prompt(tok, advice_messages(f, SOURCE, finding_block(f, SOURCE)))
        requests.append(Request(prompt, max_new_tokens=max_new_tokens, prefix=shared_prefix(prompt)))
    return requests


def test_shared_prefix_is_the_rule_part_of_the_prompt(tiny):
    requests = _advice_requests(tiny.tokenizer)
    for r in requests:
        assert r.prompt.startswith(r.prefix) and r.prefix.endswith("\n\n")
        assert "Finding:" not in r.prefix and "You are advisor" in r.prefix
    rules = {r.prefix.split("Rule ", 1)[1][:6] for r in requests}
    assert len({r.prefix for r in requests}) == len(rules) >= 2


def test_fast_generation_matches_transformers_generate(tiny):
    """Shared prefixes, rows of different rules in one batch, one row without a prefix: the
    same greedy tokens as transformers' own generate, prompt by prompt."""
    requests = _advice_requests(tiny.tokenizer)
    requests.append(Request(requests[0].prompt, max_new_tokens=10))
    requests.append(Request("Hello there", max_new_tokens=6, prefix="Hello"))
    requests += [Request(r.prompt, max_new_tokens=4, prefix=r.prefix) for r in requests[:2]]
    fast, stats = generate(tiny, requests, batch_size=4, stop_early=False)
    reference = [generate_reference(tiny, [r], batch_size=1, stop_early=False)[0][0] for r in requests]
    assert fast == reference
    assert stats.reused_tokens > 0 and stats.batches == 2
    computed_without, _ = generate(tiny, requests, batch_size=4, stop_early=False, share_prefix=False)
    assert computed_without == reference


def test_rows_join_a_running_batch_and_answer_as_if_alone(tiny):
    """Continuous batching: with more requests than rows, waiting requests join the running
    batch when rows finish (their cache right-aligned to it, leading columns trimmed); each
    answer is still exactly transformers' answer for that prompt alone."""
    requests = _advice_requests(tiny.tokenizer)
    requests = [Request(r.prompt, max_new_tokens=n, prefix=r.prefix) for r, n in zip(requests * 3, [3, 12, 5, 9, 2, 7])]
    requests.append(Request("x = 1", max_new_tokens=11))
    fast, stats = generate(tiny, requests, batch_size=2, stop_early=False)
    reference = [generate_reference(tiny, [r], batch_size=1, stop_early=False)[0][0] for r in requests]
    assert fast == reference
    assert stats.batches >= 4


def test_transformers_forward_path_matches_the_own_decoder(tiny, monkeypatch):
    """Architectures the own decoder does not cover go through transformers' forward."""
    from advisor.llm import decoder

    requests = _advice_requests(tiny.tokenizer, max_new_tokens=6)
    own, _ = generate(tiny, requests, batch_size=2, stop_early=False)
    monkeypatch.setattr(decoder, "supports", lambda model: False)
    hf, stats = generate(tiny, requests, batch_size=2, stop_early=False)
    assert hf == own and stats.batches == (len(requests) + 1) // 2


def test_stacked_projections_give_the_same_logits(tiny_dir):
    """``fuse_projections``: one query/key/value and one gate/up matmul per layer. fp32: the
    own decoder's logits are transformers' logits; per-channel int8: the same with or without
    stacking."""
    import copy

    from advisor.llm import decoder
    from advisor.llm.loader import quantize_int8

    model = load_model(str(tiny_dir), adapter="none").model
    ids = torch.arange(100, 140)[None]
    positions = torch.arange(40)[None]

    def logits(net):
        dec = decoder.Decoder(net)
        cache = dec.empty(1, 40)
        cache.bias.zero_()
        return dec.forward(ids, positions, cache)

    with torch.inference_mode():
        expected = model(input_ids=ids).logits[:, -1]
        stacked = copy.deepcopy(model)
        assert decoder.fuse_projections(stacked) == 2
        assert torch.allclose(logits(stacked), expected, atol=1e-4)
        fused8 = quantize_int8(copy.deepcopy(model))
        assert all(hasattr(layer.self_attn, "qkv_proj") for layer in fused8.model.layers)
        plain8 = quantize_int8(copy.deepcopy(model))
        for layer in plain8.model.layers:
            del layer.self_attn.qkv_proj, layer.mlp.gate_up_proj
        assert torch.allclose(logits(fused8), logits(plain8), atol=1e-5)
        assert not torch.equal(logits(fused8), expected)


def test_shared_prefix_is_computed_once(tiny):
    requests = _advice_requests(tiny.tokenizer)
    requests = [r for r in requests if r.prefix == requests[0].prefix][:1] * 3
    _, shared = generate(tiny, requests, batch_size=2, stop_early=False)
    _, plain = generate(tiny, requests, batch_size=2, stop_early=False, share_prefix=False)
    prefix = len(tiny.tokenizer(requests[0].prefix, add_special_tokens=False).input_ids)
    per_row = shared.reused_tokens // 3
    assert plain.reused_tokens == 0 and shared.reused_tokens == 3 * per_row
    assert prefix - 2 <= per_row <= prefix
    assert plain.prompt_tokens == shared.prompt_tokens + 2 * per_row


def test_prefix_store_reuses_prefixes_across_runs(tiny, tmp_path):
    from advisor.llm.prefix_cache import PrefixStore

    requests = _advice_requests(tiny.tokenizer, max_new_tokens=6)
    store = PrefixStore(tmp_path / "prefixes", {"model": tiny.info.hash}, keep=2)
    first, cold = generate(tiny, requests, batch_size=2, stop_early=False, store=store)
    files = sorted((tmp_path / "prefixes").glob("*.safetensors"))
    distinct = len({r.prefix for r in requests})
    assert cold.prefixes_loaded == 0 and len(files) == min(distinct, 2)
    second, warm = generate(tiny, requests, batch_size=2, stop_early=False, store=store)
    assert second == first
    assert warm.prefixes_loaded >= 1 and warm.prompt_tokens < cold.prompt_tokens
    for f in files:
        f.write_bytes(b"not a safetensors file")
    third, broken = generate(tiny, requests, batch_size=2, stop_early=False, store=store)
    assert third == first and broken.prefixes_loaded == 0
    other = PrefixStore(tmp_path / "prefixes", {"model": "another"}, keep=2)
    key = tuple(tiny.tokenizer(requests[0].prefix, add_special_tokens=False).input_ids)
    assert other.path(key) != store.path(key)


def test_int8_model_generates(tiny_dir, cache):
    """int8: the fp32 model reads prompts (its projections views of the stacked weights, no
    copy), the int8 copy decodes; int8-all: the smoothed int8 model does both, reading prompts
    in runs of tokens, with activation ranges measured once and then read from the cache."""
    from advisor.llm import decoder
    from advisor.llm.loader import PREFILL_CHUNK

    q = load_model(str(tiny_dir), adapter="none", quantize="int8")
    assert q.info.quantize == "int8"
    assert any("quantized" in type(m).__module__ for m in q.model.modules())
    reader = q.prompt_model.model.layers[0]
    assert not any("quantized" in type(m).__module__ for m in q.prompt_model.modules())
    assert reader.self_attn.k_proj.weight.data_ptr() == reader.self_attn.qkv_proj.weight[64:].data_ptr()
    assert decoder.Decoder(q.model).chunk == 0
    out, stats = generate(q, [Request("Hello", max_new_tokens=5)], stop_early=False)
    assert isinstance(out[0], str) and stats.new_tokens >= 1
    everything = load_model(str(tiny_dir), adapter="none", quantize="int8-all")
    assert everything.prompt_model is None and everything.info.quantize == "int8-all"
    assert decoder.Decoder(everything.model).chunk == PREFILL_CHUNK
    stored = list((cache / "smoothing").glob("*.safetensors"))
    assert len(stored) == 1
    first = stored[0].stat().st_mtime_ns
    again = load_model(str(tiny_dir), adapter="none", quantize="int8-all")
    assert stored[0].stat().st_mtime_ns == first
    prompt = [Request("Hello " * 40, max_new_tokens=5)]
    assert generate(everything, prompt, stop_early=False)[0] == generate(again, prompt, stop_early=False)[0]
    stored[0].write_bytes(b"not a safetensors file")
    load_model(str(tiny_dir), adapter="none", quantize="int8-all")
    from safetensors.torch import load_file

    assert set(load_file(str(stored[0]))) == {f"{i}.{p}" for i in range(2) for p in ("qkv", "o", "gate_up", "down")} | {"head"}


def test_smoothing_keeps_the_fp32_function(tiny_dir):
    """Folding the scales changes the weights, not what the fp32 model computes."""
    import copy

    from advisor.llm import decoder, smoothing

    lm = load_model(str(tiny_dir), adapter="none")
    model = lm.model
    decoder.fuse_projections(model)
    ranges = smoothing.activation_ranges(model, lm.tokenizer, smoothing.calibration_prompts(lm.tokenizer)[:3])
    assert set(ranges) == {f"{i}.{p}" for i in range(2) for p in ("qkv", "o", "gate_up", "down")} | {"head"}
    smoothed = copy.deepcopy(model)
    smoothing.smooth(smoothed, ranges)
    assert not torch.allclose(smoothed.model.layers[0].input_layernorm.weight, model.model.layers[0].input_layernorm.weight)
    assert torch.equal(smoothed.model.embed_tokens.weight, model.model.embed_tokens.weight)
    ids = torch.arange(100, 160)[None]

    def logits(net):
        dec = decoder.Decoder(net)
        c = dec.empty(1, 61)
        c.bias.zero_()
        first = dec.forward(ids, torch.arange(60)[None], c)
        c.bias[:, 60] = 0
        return torch.cat([first, dec.forward(torch.tensor([[7]]), torch.tensor([[60]]), c)])

    with torch.inference_mode():
        assert torch.allclose(logits(smoothed), logits(model), atol=1e-4, rtol=1e-4)


def test_bf16_prompt_reader(tiny_dir, cache, monkeypatch):
    """``ADVISOR_PROMPT_PRECISION=bf16``: the prompt model's projections are bfloat16 (stacked
    parts still views), it reads a prompt close to fp32 and not identically, decoding stays
    int8, and answers are cached apart from fp32-prompt ones; a bad value means auto."""
    from advisor.llm import decoder, loader

    monkeypatch.setenv("ADVISOR_PROMPT_PRECISION", "fp32")
    plain = load_model(str(tiny_dir), adapter="none", quantize="int8")
    fp32_scheme = loader.scheme("int8")
    monkeypatch.setenv("ADVISOR_PROMPT_PRECISION", "bf16")
    q = load_model(str(tiny_dir), adapter="none", quantize="int8")
    assert q.info.extra["prompt_precision"] == "bf16" and plain.info.extra["prompt_precision"] == "fp32"
    assert loader.scheme("int8") != fp32_scheme and loader.scheme("int8-all") == loader.SCHEMES["int8-all"]
    att = q.prompt_model.model.layers[0].self_attn
    assert att.qkv_proj.weight.dtype == torch.bfloat16 and att.o_proj.weight.dtype == torch.bfloat16
    assert att.k_proj.weight.data_ptr() == att.qkv_proj.weight[64:].data_ptr()
    assert q.prompt_model.model.embed_tokens.weight.dtype == torch.float32
    assert q.prompt_model.lm_head.weight.dtype == torch.float32
    assert decoder.Decoder(q.prompt_model).compute == torch.bfloat16 and decoder.Decoder(plain.prompt_model).compute is None
    ids = torch.arange(300, 360)[None]

    def read(model):
        dec = decoder.Decoder(model)
        c = dec.empty(1, 60)
        c.bias.zero_()
        with torch.inference_mode():
            return dec.forward(ids, torch.arange(60)[None], c), c

    (bf, bf_cache), (fp, fp_cache) = read(q.prompt_model), read(plain.prompt_model)
    assert bf_cache.keys[1].dtype == torch.float32
    assert not torch.equal(bf, fp) and torch.allclose(bf, fp, atol=0.05 * float(fp.abs().max()))
    out, stats = generate(q, [Request("Hello " * 30, max_new_tokens=4)], stop_early=False)
    assert stats.new_tokens == 4 and isinstance(out[0], str)
    monkeypatch.setenv("ADVISOR_PROMPT_PRECISION", "fast please")
    assert loader.prompt_precision() == ("bf16" if {"amx_tile", "amx_bf16"} <= loader._cpu_flags() else "fp32")


def test_int8_prompt_reading_does_not_depend_on_batch_mates(tiny_dir, cache):
    """In runs of tokens per row, a prompt's logits are the same alone or next to a longer,
    left-padding prompt; one scale over the whole batch (plain int8) gives different ones."""
    from advisor.llm import decoder

    def first_logits(model, rows):
        dec = decoder.Decoder(model)
        width = max(len(r) for r in rows)
        c = dec.empty(len(rows), width)
        ids = torch.zeros(len(rows), width, dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, width - len(r):] = torch.tensor(r)
            c.bias[i, width - len(r):] = 0
        positions = (torch.arange(width)[None] - (width - torch.tensor([len(r) for r in rows]))[:, None]).clamp(min=0)
        with torch.inference_mode():
            return dec.forward(ids, positions, c)[-1]

    short = list(range(200, 240))
    loud = [5] * 90
    smoothed = load_model(str(tiny_dir), adapter="none", quantize="int8-all").model
    assert torch.allclose(first_logits(smoothed, [short]), first_logits(smoothed, [loud, short]), atol=1e-5)
    plain = load_model(str(tiny_dir), adapter="none", quantize="int8").model
    assert not torch.allclose(first_logits(plain, [short]), first_logits(plain, [loud, short]), atol=1e-5)


@pytest.mark.parametrize(
    "text, explain_only, done",
    [
        ("Because.\n```python\nx = 1\n", False, False),
        ("Because.\n```python\nx = 1\n```", False, True),
        ("Because it runs on the caller.", True, False),
        ("Because it runs on the caller.\n\nThe", True, True),
        ("The problem:\n\nThe", True, False),
        ("Because.\n```", True, True),
        ("loop line\nloop line\nloop line\nloop line\n", False, True),
    ],
)
def test_answer_complete(text, explain_only, done):
    assert answer_complete(text, explain_only) is done


def test_stop_early_ends_rows_at_their_answer(tiny, monkeypatch):
    from advisor.llm import generate as gen

    calls = []
    monkeypatch.setattr(gen, "answer_complete", lambda text, eo=False: calls.append(text) or len(calls) >= 3)
    out, stats = generate(tiny, [Request("Hello", max_new_tokens=30)], stop_early=True)
    assert stats.new_tokens <= 4


def test_advice_shape_rule_fix_and_model_suggestion(tiny, cache):
    findings = check_source(SOURCE, "bump.py").findings
    codes = {f.code for f in findings}
    assert "THR001" in codes and len(codes) >= 2
    run = advise(findings, {"bump.py": SOURCE}, AdviceOptions(max_new_tokens=24), loaded=tiny)
    assert run.advised == len(findings) and run.generated == len(findings) and run.cached == 0
    for f in findings:
        a = f.advice
        assert set(a) >= {"explanation", "suggested_code", "diff", "verified", "source", "model"}
        assert a["model"]["hash"] == tiny.info.hash[:16]
        if f.fix is not None:
            assert a["source"] == "rule"
            assert a["verified"] is True and "t.start()" in a["diff"]
        else:
            # random weights do not write a fix
            assert a["source"] == "model" and a["verified"] is False and a["diff"] is None
    json.dumps([f.to_dict() for f in findings])


def test_unchanged_rerun_never_loads_the_model(tiny, tiny_dir, cache, monkeypatch):
    options = AdviceOptions(model=str(tiny_dir), adapter="none", quantize=None, max_new_tokens=24)
    first = check_source(SOURCE, "bump.py").findings
    monkeypatch.setattr(advice_mod, "_load", lambda opts: tiny)
    run1 = advise(first, {"bump.py": SOURCE}, options)
    assert run1.generated == len(first)

    def refuse(opts):
        raise AssertionError("model loaded on an unchanged re-run")

    monkeypatch.setattr(advice_mod, "_load", refuse)
    again = check_source(SOURCE, "bump.py").findings
    run2 = advise(again, {"bump.py": SOURCE}, options)
    assert run2.cached == len(again) and run2.generated == 0
    assert [f.advice for f in again] == [f.advice for f in first]

    changed = SOURCE.replace("counter += 1", "counter += 2")
    third = check_source(changed, "bump.py").findings
    with pytest.raises(AssertionError, match="re-run"):
        advise(third, {"bump.py": changed}, options)


def test_cache_key_depends_on_model_adapter_settings_and_prompt():
    from advisor.llm.loader import AdapterSpec, ModelSpec

    spec = ModelSpec("m", "gguf", "/m.gguf", "a" * 64)
    other = ModelSpec("m", "gguf", "/m.gguf", "b" * 64)
    lora = AdapterSpec("/lora", "c" * 64, "lora")
    msgs = [{"role": "user", "content": "x"}]
    base = answer_key(spec, None, AdviceOptions(), msgs, False)
    assert base == answer_key(spec, None, AdviceOptions(), [dict(m) for m in msgs], False)
    variants = [
        answer_key(other, None, AdviceOptions(), msgs, False),
        answer_key(spec, lora, AdviceOptions(), msgs, False),
        answer_key(spec, None, AdviceOptions(quantize=None), msgs, False),
        answer_key(spec, None, AdviceOptions(), [{"role": "user", "content": "y"}], False),
        answer_key(spec, None, AdviceOptions(), msgs, True),
    ]
    assert len({base, *variants}) == 6


def test_missing_weights_give_one_install_line(tmp_path):
    findings = check_source(SOURCE, "bump.py").findings
    run = advise(findings, {"bump.py": SOURCE}, AdviceOptions(model=str(tmp_path / "nope.gguf")))
    assert run.note and "--model" in run.note
    assert all(f.advice is None for f in findings)


def test_lora_adapter_is_loaded_and_changes_the_model(tiny_dir, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(tiny_dir))
    torch.manual_seed(1)
    peft_model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    adapter = tmp_path / "adapter"
    peft_model.save_pretrained(adapter, safe_serialization=True)
    with_adapter = load_model(str(tiny_dir), adapter=str(adapter))
    plain = load_model(str(tiny_dir), adapter="none")
    assert with_adapter.info.adapter_hash and with_adapter.info.adapter == str(adapter.resolve())
    ids = plain.tokenizer("def f():", return_tensors="pt").input_ids
    with torch.inference_mode():
        assert not torch.allclose(with_adapter.model(ids).logits, plain.model(ids).logits)

    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "adapter_config.json").write_text((adapter / "adapter_config.json").read_text())
    (pickled / "adapter_model.bin").write_bytes(b"not loaded")
    with pytest.raises(ModelUnavailable):
        load_model(str(tiny_dir), adapter=str(pickled))


def test_cli_check_attaches_advice_and_model_info(tiny_dir, tmp_path, cache, monkeypatch):
    monkeypatch.setenv("ADVISOR_MAX_NEW_TOKENS", "16")
    path = tmp_path / "bump.py"
    path.write_text(SOURCE)
    runner = CliRunner()
    result = runner.invoke(main, ["check", "--format", "json", "--model", str(tiny_dir), "--adapter", "none", str(path)])
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert data["findings"] and all(f["advice"] for f in data["findings"])
    text = runner.invoke(main, ["check", "--model", str(tiny_dir), "--adapter", "none", str(path)])
    assert "= advice (rule, verified):" in text.output
    assert "+        t.start()" in text.output

    info = runner.invoke(main, ["model", "info", "--format", "json", "--model", str(tiny_dir), "--adapter", "none"])
    assert info.exit_code == 0, info.output
    meta = json.loads(info.output)
    assert meta["model"]["kind"] == "dir" and meta["model"]["sha256"] == dir_hash(tiny_dir)
    assert meta["adapter"] is None


def test_cli_check_without_weights_prints_findings_and_install_line(tmp_path, cache):
    path = tmp_path / "bump.py"
    path.write_text(SOURCE)
    result = CliRunner().invoke(main, ["check", "--model", str(tmp_path / "missing.gguf"), str(path)])
    assert result.exit_code == 1
    assert "THR001" in result.output
    notes = [ln for ln in result.output.splitlines() if ln.startswith("advice skipped")]
    assert len(notes) == 1


@pytest.mark.parametrize(
    "raw, shown",
    [
        ("It runs on the caller. It runs on the caller.\nIt runs on the caller.", "It runs on the caller."),
        ("Line one.\nLine one.\nLine one.", "Line one."),
        ("The thread never starts. Use `start()`.\nThe corrected function is:", "The thread never starts. Use `start()`."),
        ("(or The", ""),
        ("First. Second. Third. Fourth. Fifth.", "First. Second. Third. Fourth."),
    ],
)
def test_tidy_explanation(raw, shown):
    from advisor.llm.advice import tidy_explanation

    assert tidy_explanation(raw) == shown


def test_calibration_set_is_one_training_example_per_rule(tiny):
    """``calibration.jsonl`` is what ``select_calibration`` picks from the corpus (regenerate it
    when the corpus changes), held-out examples stay out, and every example gives a prompt."""
    from advisor.corpus.examples import load_corpus
    from advisor.finetune.config import FinetuneConfig
    from advisor.finetune.pipeline import split_of
    from advisor.llm import smoothing
    from advisor.rules import all_rules

    root = os.path.join(os.path.dirname(__file__), "..", "corpus")
    holdout = FinetuneConfig().holdout
    shipped = smoothing.calibration_examples()
    assert shipped == smoothing.select_calibration(load_corpus(root).examples, holdout)
    assert sorted(ex["rule"] for ex in shipped) == sorted(r.code for r in all_rules())
    assert all(split_of(ex["id"], holdout) == "train" for ex in shipped)
    assert len(smoothing.calibration_prompts(tiny.tokenizer)) == len(shipped)
