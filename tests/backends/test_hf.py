from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM
from scipy import stats

import passk_plugin.backends  # noqa: F401  (registers hf-passk)
from passk_plugin.backends.hf import (
    HFPassKLM,
    _Rows,
    admits,
    joins_running_batch,
    unit_cap,
)

from .conftest import instances, tiny_repeats_task

PROMPTS = [
    "Q: Tom has 3 apples and buys 12 more.",
    "def add(a: int, b: int) -> int:\n",
    "Problem: Find $x$ if $2x + 3 = 7$. Solution:",
    "The quick brown fox",
    "for i in range(10):",
]
GREEDY = {"until": ["\n\n", "Q:"], "do_sample": False, "max_gen_toks": 20}


def interleaved(gen_kwargs: dict, k: int, prompts: list[str] = PROMPTS) -> list[Instance]:
    """k copies of every prompt, problems interleaved (as lm_eval orders them: p0 p1 p2 p0 ...)."""
    return instances([(p, gen_kwargs) for _ in range(k) for p in prompts])


@pytest.fixture(scope="module")
def stock(tiny_model: Path) -> HFLM:
    return HFLM(pretrained=str(tiny_model), device="cpu", batch_size=8)


@pytest.fixture(scope="module")
def passk(tiny_model: Path) -> HFPassKLM:
    return HFPassKLM(pretrained=str(tiny_model), device="cpu", seed=123)


@pytest.fixture(scope="module")
def peaked_model(tmp_path_factory, tiny_model: Path) -> Path:
    """The tiny model with a sharper output layer, so temperature and top-p change a lot."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path_factory.mktemp("peaked") / "model"
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    with torch.no_grad():
        model.lm_head.weight.mul_(12.0)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_model).save_pretrained(out)
    return out


# ---------------------------------------------------------------------------------------------
# pure helpers


def test_admits_respects_rows_and_tokens():
    assert admits(8, 100, max_rows=8, max_tokens=None, gen_tokens=20)
    assert not admits(9, 100, max_rows=8, max_tokens=None, gen_tokens=20)
    # 8 rows x (100 + 20) = 960 tokens
    assert admits(8, 100, max_rows=64, max_tokens=960, gen_tokens=20)
    assert not admits(8, 100, max_rows=64, max_tokens=959, gen_tokens=20)


def test_joins_running_batch_only_without_length_dependent_processors():
    from transformers import GenerationConfig

    assert joins_running_batch(GenerationConfig(do_sample=True, temperature=0.7, top_p=0.9))
    assert joins_running_batch(GenerationConfig(repetition_penalty=1.1))
    assert not joins_running_batch(GenerationConfig(min_new_tokens=5))
    assert not joins_running_batch(GenerationConfig(forced_eos_token_id=2))


def test_unit_cap():
    assert unit_cap(100, max_rows=64, max_tokens=None, gen_tokens=28) == 64
    assert unit_cap(100, max_rows=64, max_tokens=1280, gen_tokens=28) == 10
    assert unit_cap(10_000, max_rows=64, max_tokens=1280, gen_tokens=28) == 1


# ---------------------------------------------------------------------------------------------
# equivalence with stock hf


@pytest.mark.parametrize(
    "options",
    [
        {},
        # tiny budgets: groups split, one row per batch, prompts prefilled in several passes
        {"max_num_seqs": 3, "max_batch_tokens": 100, "max_prefill_tokens": 16},
    ],
)
def test_greedy_equals_stock_hf(tiny_model, stock, options):
    reqs = interleaved(GREEDY, k=3)
    want = stock.generate_until(reqs, disable_tqdm=True)
    lm = HFPassKLM(pretrained=str(tiny_model), device="cpu", **options)
    got = lm.generate_until(reqs, disable_tqdm=True)
    assert got == want
    # greedy outputs differ between prompts, so equality also checks the order
    assert len(set(want)) == len(PROMPTS)


def _stops_from(text: str) -> tuple[list[str], list[str]]:
    """Stop strings that occur in a generation: a plain pair and an overlapping pair."""
    mid = len(text) // 2
    i = next(j for j in range(mid, len(text) - 3) if text[j + 1] not in text[: j + 1])
    plain = [text[mid : mid + 2], "never-there"]
    overlapping = [text[i : i + 3], text[i + 1]]  # like ["abc", "b"]
    return plain, overlapping


def test_stop_strings_cut_like_stock_hf(tiny_model, stock, passk):
    """Cuts equal stock hf's at batch size 1, where each row stops at its first stop string."""
    stock1 = HFLM(pretrained=str(tiny_model), device="cpu", batch_size=1)
    free = {"until": [], "do_sample": False, "max_gen_toks": 40}
    base = stock.generate_until(instances([(p, free) for p in PROMPTS]), disable_tqdm=True)
    args = []
    for prompt, text in zip(PROMPTS, base, strict=True):
        for until in _stops_from(text):
            args.append((prompt, {**free, "until": until}))
    reqs = instances(args)
    want = stock1.generate_until(reqs, disable_tqdm=True)
    got = passk.generate_until(reqs, disable_tqdm=True)
    assert got == want
    # the stop strings did cut: every output is shorter than the free-running one
    for (prompt, kw), text in zip(args, got, strict=True):
        assert len(text) < len(base[PROMPTS.index(prompt)]), kw["until"]


@pytest.mark.parametrize("extra", [{}, {"min_new_tokens": 4}])
def test_eos_mid_batch_equals_stock_hf(tiny_model, monkeypatch, extra):
    """Rows ending at EOS leave the batch and others join it; results match stock hf.

    With min_new_tokens (counted from the prompt's end) rows may not join a running batch.
    """
    stock = HFLM(pretrained=str(tiny_model), device="cpu", batch_size=16)
    lm = HFPassKLM(pretrained=str(tiny_model), device="cpu", max_num_seqs=4)
    joins = []
    extend = _Rows.extend
    monkeypatch.setattr(_Rows, "extend", lambda self, *a: (joins.append(1), extend(self, *a)))
    free = {"until": [], "do_sample": False, "max_gen_toks": 30, **extra}
    reqs = instances([(p, free) for p in PROMPTS])
    # make a token that greedy decoding emits mid-way the EOS token of both models
    tok = stock.tokenizer
    first = tok(stock.generate_until(reqs[:1], disable_tqdm=True)[0], add_special_tokens=False)
    eos = first.input_ids[len(first.input_ids) // 2]
    for m in (stock, lm):
        m.model.generation_config.eos_token_id = eos
    reqs = interleaved(free, k=2)
    want = stock.generate_until(reqs, disable_tqdm=True)
    got = lm.generate_until(reqs, disable_tqdm=True)
    assert got == want
    assert len({len(t) for t in got}) > 1  # rows really stopped at different steps
    assert bool(joins) == (not extra)  # rows joined a running batch only where allowed


def test_max_length_counts_the_prompt_like_stock_hf(stock, passk):
    prompt = PROMPTS[1]
    width = len(stock.tok_encode(prompt))
    args = [(prompt, {"until": [], "do_sample": False, "max_length": width + n}) for n in (3, 0)]
    got = passk.generate_until(instances(args), disable_tqdm=True)
    assert got[0] == stock.generate_until(instances(args[:1]), disable_tqdm=True)[0]
    assert len(stock.tok_encode(got[0])) <= 4
    assert got[1] == ""  # no room left for new tokens


def test_unsupported_settings_fall_back_to_stock_hf(stock, passk):
    beams = {"until": ["\n\n"], "do_sample": False, "num_beams": 2, "max_gen_toks": 8}
    reqs = instances([(p, beams) for p in PROMPTS[:2]] + [(PROMPTS[0], GREEDY)])
    assert passk.generate_until(reqs, disable_tqdm=True) == stock.generate_until(
        reqs, disable_tqdm=True
    )


# ---------------------------------------------------------------------------------------------
# sampling


SAMPLE = {"until": ["\n\n"], "do_sample": True, "temperature": 1.0, "max_gen_toks": 12}


def test_samples_return_in_request_order(stock, passk):
    # so cold that sampling is greedy: each sample must be its own prompt's greedy output
    cold = {**GREEDY, "do_sample": True, "temperature": 1e-4}
    reqs = interleaved(cold, k=4)
    outs = stock.generate_until(instances([(p, GREEDY) for p in PROMPTS]), True)
    greedy = dict(zip(PROMPTS, outs, strict=True))
    got = passk.generate_until(reqs, disable_tqdm=True)
    assert got == [greedy[r.args[0]] for r in reqs]


def test_seeded_sampling_reproduces(tiny_model, passk):
    reqs = interleaved(SAMPLE, k=4)
    first = passk.generate_until(reqs, disable_tqdm=True)
    assert passk.generate_until(reqs, disable_tqdm=True) == first
    same = HFPassKLM(pretrained=str(tiny_model), device="cpu", seed=123)
    assert same.generate_until(reqs, disable_tqdm=True) == first
    other = HFPassKLM(pretrained=str(tiny_model), device="cpu", seed=124)
    assert other.generate_until(reqs, disable_tqdm=True) != first
    # the samples of one prompt are independent draws, not copies
    for p in PROMPTS:
        assert len({t for r, t in zip(reqs, first, strict=True) if r.args[0] == p}) > 1


def test_default_seed_follows_torch_seed(tiny_model):
    reqs = interleaved(SAMPLE, k=2)
    outs = []
    for _ in range(2):
        torch.manual_seed(7)  # what lm_eval's --seed does before building the model
        lm = HFPassKLM(pretrained=str(tiny_model), device="cpu")
        outs.append(lm.generate_until(reqs, disable_tqdm=True))
    assert outs[0] == outs[1]


def _expected_probs(logits: torch.Tensor, temperature: float, top_k: int, top_p: float):
    """Stock hf's sampling distribution, computed independently of transformers' processors."""
    z = logits.double().numpy() / temperature
    order = np.argsort(-z)
    keep = np.zeros_like(z, dtype=bool)
    keep[order[:top_k]] = True
    p = np.exp(z - z.max())
    p[~keep] = 0.0
    p /= p.sum()
    # top-p keeps the smallest head of the sorted distribution whose mass reaches top_p
    sorted_p = p[order]
    cum = np.cumsum(sorted_p)
    n_keep = int(np.searchsorted(cum, top_p) + 1)
    mask = np.zeros_like(keep)
    mask[order[:n_keep]] = True
    p[~mask] = 0.0
    return p / p.sum()


def _chi2_pvalue(counts: np.ndarray, probs: np.ndarray, min_expected: float = 5.0) -> float:
    """Goodness of fit, rare outcomes pooled so each cell expects at least min_expected."""
    total = counts.sum()
    expected = probs * total
    if counts[expected == 0].sum() > 0:
        return 0.0  # a draw the distribution forbids
    big = expected >= min_expected
    obs = np.append(counts[big], counts[~big].sum())
    exp = np.append(expected[big], expected[~big].sum())
    if exp[-1] == 0:
        obs, exp = obs[:-1], exp[:-1]
    return float(stats.chisquare(obs, exp).pvalue)


def test_sampling_distribution_matches_softmax(peaked_model):
    """First and second tokens follow the processed softmax of the model's own logits."""
    lm = HFPassKLM(pretrained=str(peaked_model), device="cpu", max_num_seqs=1000)
    temperature, top_p, n = 0.7, 0.9, 4000
    settings = lm.resolve_settings(
        {
            "until": [],
            "do_sample": True,
            "temperature": temperature,
            "top_p": top_p,
            "max_gen_toks": 2,
        }
    )
    prompt = lm.tok_encode(PROMPTS[0])
    gen = torch.Generator().manual_seed(0)
    samples = lm.sample([prompt], [n], settings, gen)[0]
    eos = lm.tokenizer.eos_token_id
    assert all(len(s) == 2 or s == [eos] for s in samples)  # two tokens unless the first ends it
    first = np.array([s[0] for s in samples])

    with torch.no_grad():
        logits = lm.model(torch.tensor([prompt])).logits[0, -1]
    vocab = logits.shape[-1]
    want = _expected_probs(logits, temperature, top_k=50, top_p=top_p)
    counts = np.bincount(first, minlength=vocab)
    assert _chi2_pvalue(counts, want) > 1e-3
    # the test has power: the wrong temperature, or top-p left out, is rejected
    assert _chi2_pvalue(counts, _expected_probs(logits, 1.0, 50, top_p)) < 1e-6
    assert _chi2_pvalue(counts, _expected_probs(logits, temperature, 50, 1.0)) < 1e-6

    # second token after the commonest first token: exercises the shared, copied cache
    top = int(np.bincount(first).argmax())
    second = np.array([s[1] for s in samples if s[0] == top])
    with torch.no_grad():
        logits2 = lm.model(torch.tensor([prompt + [top]])).logits[0, -1]
    want2 = _expected_probs(logits2, temperature, top_k=50, top_p=top_p)
    assert len(second) > 500
    assert _chi2_pvalue(np.bincount(second, minlength=vocab), want2) > 1e-3


def test_greedy_when_temperature_zero(passk, stock):
    hot_zero = {**GREEDY, "do_sample": True, "temperature": 0.0}
    reqs = instances([(p, hot_zero) for p in PROMPTS])
    want = stock.generate_until(instances([(p, GREEDY) for p in PROMPTS]), True)
    assert passk.generate_until(reqs, disable_tqdm=True) == want


def test_bad_options_are_rejected(tiny_model):
    with pytest.raises(ValueError, match="max_num_seqs"):
        HFPassKLM(pretrained=str(tiny_model), device="cpu", max_num_seqs=0)


# ---------------------------------------------------------------------------------------------
# end to end through lm_eval


def _run(model: str, model_args: str, task_dir: Path) -> list[list[str]]:
    import lm_eval
    from lm_eval.tasks import TaskManager

    out = lm_eval.simple_evaluate(
        model=model,
        model_args=model_args,
        tasks=["tiny_repeats"],
        task_manager=TaskManager(include_path=[str(task_dir)], include_defaults=False),
        device="cpu",
        log_samples=True,
    )
    samples = sorted(out["samples"]["tiny_repeats"], key=lambda s: s["doc_id"])
    # a doc's repeats are one lm_eval Instance holding all their responses
    return [s["resps"][0] for s in samples]


@pytest.mark.slow
def test_lm_eval_run_with_repeats(tmp_path, tiny_model):
    args = f"pretrained={tiny_model},max_num_seqs=8"
    sampled = tiny_repeats_task(tmp_path / "s", {**SAMPLE, "until": ["\n\n"]}, PROMPTS[:3])
    first = _run("hf-passk", args, sampled)
    assert [len(r) for r in first] == [4, 4, 4]
    assert all(len(set(r)) > 1 for r in first)  # different samples of one doc
    assert _run("hf-passk", args, sampled) == first  # lm_eval's default seed: reproducible

    greedy = tiny_repeats_task(tmp_path / "g", GREEDY, PROMPTS[:3])
    assert _run("hf-passk", args, greedy) == _run("hf", f"pretrained={tiny_model}", greedy)


@pytest.mark.slow
def test_gsm8k_passk_task_runs(tiny_model, shared_data, monkeypatch):
    import lm_eval
    from lm_eval.tasks import TaskManager

    from passk_plugin.paths import tasks_dir

    monkeypatch.setenv("PASSK_DATA_DIR", str(shared_data))
    if not (tasks_dir() / "gsm8k_passk.yaml").exists():
        pytest.skip("gsm8k_passk task not found")
    out = lm_eval.simple_evaluate(
        model="hf-passk",
        model_args=f"pretrained={tiny_model}",
        tasks=["gsm8k_passk"],
        task_manager=TaskManager(
            include_path=[str(tasks_dir())], include_defaults=False, metadata={"n": 4}
        ),
        gen_kwargs="max_gen_toks=8",
        limit=2,
        device="cpu",
        log_samples=True,
    )
    samples = out["samples"]["gsm8k_passk"]
    assert len(samples) == 2
    assert all(len(s["resps"][0]) == 4 for s in samples)
    assert all(len(s["filtered_resps"][0]) == 4 for s in samples)  # all four graded


# ---------------------------------------------------------------------------------------------
# decoding settings beyond temperature: top_p, min_p, typical_p (the sweep's --decoding)


def _top_k(p: np.ndarray, k: int = 50) -> np.ndarray:
    keep = np.zeros_like(p, dtype=bool)
    keep[np.argsort(-p)[:k]] = True
    out = np.where(keep, p, 0.0)
    return out / out.sum()


def _cut_top_p(p: np.ndarray, top_p: float) -> np.ndarray:
    order = np.argsort(-p)
    n_keep = int(np.searchsorted(np.cumsum(p[order]), top_p) + 1)
    keep = np.zeros_like(p, dtype=bool)
    keep[order[:n_keep]] = True
    return keep


def _cut_min_p(p: np.ndarray, min_p: float) -> np.ndarray:
    # Nguyen et al.: keep tokens at least min_p times as likely as the most likely one
    return p >= min_p * p.max()


def _cut_typical(p: np.ndarray, mass: float) -> np.ndarray:
    # Meister et al.: the tokens whose surprisal is closest to the entropy, up to `mass`
    support = p > 0
    surprisal = np.where(support, -np.log(np.where(support, p, 1.0)), np.inf)
    entropy = float(-(p[support] * np.log(p[support])).sum())
    distance = np.abs(surprisal - entropy)
    order = np.argsort(distance, kind="stable")
    n_keep = min(int((np.cumsum(p[order]) < mass).sum()) + 1, len(p))
    return support & (distance <= distance[order[n_keep - 1]])


CUTS = {"top_p": (_cut_top_p, 0.7), "min_p": (_cut_min_p, 0.1), "typical_p": (_cut_typical, 0.6)}


@pytest.mark.parametrize("key", sorted(CUTS))
def test_decoding_settings_change_the_sampling_distribution(peaked_model, key):
    """First tokens follow the distribution the setting defines (computed here, from the
    model's own logits), and not the one without it: the setting reaches the sampler."""
    cut, value = CUTS[key]
    lm = HFPassKLM(pretrained=str(peaked_model), device="cpu", max_num_seqs=1000)
    settings = lm.resolve_settings(
        {"until": [], "do_sample": True, "temperature": 1.0, key: value, "max_gen_toks": 1}
    )
    prompt = lm.tok_encode(PROMPTS[0])
    samples = lm.sample([prompt], [3000], settings, torch.Generator().manual_seed(0))[0]
    first = np.array([s[0] for s in samples])
    with torch.no_grad():
        logits = lm.model(torch.tensor([prompt])).logits[0, -1].double().numpy()
    plain = _top_k(np.exp(logits - logits.max()))  # transformers' default top_k = 50
    keep = cut(plain, value)
    assert 0.1 < plain[~keep].sum() < 0.9  # the setting cuts enough mass to be seen
    want = np.where(keep, plain, 0.0) / plain[keep].sum()
    counts = np.bincount(first, minlength=len(plain))
    assert counts[~keep].sum() == 0  # no cut token is ever drawn
    assert _chi2_pvalue(counts, want) > 1e-3
    assert _chi2_pvalue(counts, plain) < 1e-6


@pytest.mark.parametrize("key", ["top_p", "min_p", "typical_p"])
def test_decoding_settings_reach_stock_hf_and_hf_passk(stock, passk, key):
    """A setting strict enough to leave one token makes every sample of a prompt the same;
    without it the samples differ (stock hf gets the setting through lm_eval's gen_kwargs)."""
    hot = {"until": ["\n\n"], "do_sample": True, "temperature": 1.0, "max_gen_toks": 6}
    strict = {**hot, key: {"top_p": 0.001, "min_p": 1.0, "typical_p": 0.001}[key]}
    for lm in (stock, passk):
        loose = lm.generate_until(interleaved(hot, 4, PROMPTS[:1]), disable_tqdm=True)
        assert len(set(loose)) > 1
        out = lm.generate_until(interleaved(strict, 4, PROMPTS[:1]), disable_tqdm=True)
        assert len(set(out)) == 1, (type(lm).__name__, out)
        if key != "typical_p":  # one token left: the most likely one
            greedy = lm.generate_until(
                instances([(PROMPTS[0], {**GREEDY, "until": ["\n\n"], "max_gen_toks": 6})]),
                disable_tqdm=True,
            )
            assert out[0] == greedy[0]
