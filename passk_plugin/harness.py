"""The glue lm_eval calls from passk's task YAMLs (`!function passk_plugin.harness.<name>`).

How a passk task scores all n samples of a problem:

1. `PasskTask` (the YAMLs' `class:`) reads the task metadata, where lm_eval merges
   `--metadata` and `--model_args`: `n` becomes lm_eval's `repeats` (n identical requests per
   problem) and `k` the list of pass@k metrics (default 1, 2, 4, ..., n). maj@k is added
   where the YAML's metadata says `majority_vote: true`.
2. One filter named `all` (lm_eval's `custom` filter with `filter_fn: grade_<bench>`) grades
   every sample of every problem at once, so code runs in parallel over the whole task, and
   leaves per problem a list of verdicts, one per sample in generation order, each a JSON
   object string {"correct", "answer", "result", "answer_class"} (strings, because
   --log_samples would write dicts as Python reprs; `parse_verdicts` decodes them).
   The raw text stays in `resps`.
3. `PasskTask.process_results` turns one problem's verdicts into pass@k, G-Pass@k_tau and
   mG-Pass@k (k > 1; metadata `tau`, default 0.5,0.75,1.0), maj@k as its expectation over
   all k-subsets (voting by the verdicts' `answer_class`, else `answer`), the diversity
   diagnostics (rho0_share, rho1_share; distinct_answers, answer_entropy), n and c.
   lm_eval averages them over problems and gives the standard error of the mean, so results
   read "pass@1,all" and "pass@1_stderr,all".

Sampling defaults (the YAMLs): n = 16, temperature 0.6, top_p 0.95, do_sample set explicitly
(lm_eval's cache would otherwise collapse the repeats). Codex (Chen et al. 2021) found the
best temperature rising with k, 0.2 for pass@1 to 0.8 for pass@100; 0.6 suits k <= 16 and
is the common setting for reasoning models. Raise it for large k with --gen_kwargs.
max_gen_toks: 1024 for chain-of-thought (2048 for zero-shot MATH), 512 for HumanEval
completions, 1024 for the chat variant.

Grading options from the metadata: `grade_timeout` (seconds per sample, MATH and HumanEval)
and `grade_workers` (parallel grading processes, MATH and HumanEval; default every CPU).
The graders know nothing about lm_eval; this module only adapts them.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lm_eval.api.task import ConfigurableTask

from passk_plugin import metrics
from passk_plugin.graders import Verdict

DEFAULT_N = 16

# Grading options a user may set through --metadata, passed on to the filter functions.
GRADE_OPTIONS = {"grade_timeout": "timeout", "grade_workers": "workers"}


@dataclass(frozen=True)
class PasskSettings:
    """What to sample and report, read from a task's metadata."""

    n: int
    ks: tuple[int, ...]
    majority_vote: bool = False
    # G-Pass@k thresholds (metadata `tau`, e.g. "0.5,0.75,1.0"; "none" for none), reported
    # for every k > 1 with mG-Pass@k. Default metrics.DEFAULT_TAUS = 0.5, 0.75, 1.0.
    taus: tuple[float, ...] = metrics.DEFAULT_TAUS

    @classmethod
    def from_metadata(
        cls, metadata: Mapping[str, Any], default_n: int = DEFAULT_N
    ) -> PasskSettings:
        n = _as_int(metadata.get("n", default_n), "n")
        if n < 1:
            raise ValueError(f"n (samples per problem) must be at least 1, got {n}")
        k = metadata.get("k")
        if isinstance(k, int):
            k = [k]
        ks = metrics.parse_ks(k, n)
        tau = metadata.get("tau")
        taus = metrics.parse_taus([tau] if isinstance(tau, (int, float)) else tau)
        return cls(
            n=n,
            ks=tuple(ks),
            majority_vote=_as_bool(metadata.get("majority_vote")),
            taus=taus,
        )

    def metric_names(self) -> list[str]:
        """Per-problem scores averaged over problems (higher is better)."""
        names = [f"pass@{k}" for k in self.ks]
        for k in self.ks:
            if k > 1:  # G-Pass@1 is Pass@1 whatever tau; mG-Pass@1 is 0
                names += [f"g-pass@{k}_{metrics.tau_label(t)}" for t in self.taus]
                names.append(f"mg-pass@{k}")
        if self.majority_vote:
            # maj@1 is one sample's correctness, a noisier pass@1: left out.
            names += [f"maj@{k}" for k in self.ks if k > 1]
        return names

    def diversity_names(self) -> list[str]:
        """Per-problem diagnostics averaged over problems (neither higher nor lower is better):
        shares of problems with rho = 0 and rho = 1 and, for answer-graded tasks, distinct
        answer classes and answer entropy (bits)."""
        names = ["rho0_share", "rho1_share"]
        if self.majority_vote:
            names += ["distinct_answers", "answer_entropy"]
        return names


def _as_int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be an integer, got {value!r}") from err


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def metric_list(settings: PasskSettings) -> list[dict[str, Any]]:
    """lm_eval metric_list entries: every metric is a per-problem value averaged over problems."""
    entries = [
        {"metric": name, "aggregation": "mean", "higher_is_better": True}
        for name in settings.metric_names()
    ]
    entries += [
        {"metric": name, "aggregation": "mean", "higher_is_better": None}
        for name in settings.diversity_names()
    ]
    # n and c ride along so logged samples carry them; their mean is reported too.
    entries += [
        {"metric": "n", "aggregation": "mean", "higher_is_better": None},
        {"metric": "c", "aggregation": "mean", "higher_is_better": True},
    ]
    return entries


def score_problem(
    verdicts: Sequence[Mapping[str, Any] | str], settings: PasskSettings
) -> dict[str, Any]:
    """pass@k, G-Pass@k, mG-Pass@k (and expected maj@k, diversity), n and c of one problem
    from its per-sample verdicts. Answers vote by the verdict's `answer_class` (the grader's
    equivalence class) where present, else by the normalised `answer`."""
    verdicts = parse_verdicts(verdicts)
    n = len(verdicts)
    correct = [bool(v["correct"]) for v in verdicts]
    c = sum(correct)
    classes = None
    if settings.majority_vote:
        answers = [v["answer_class"] if "answer_class" in v else v.get("answer") for v in verdicts]
        classes = [metrics.AnswerClasses.from_samples(answers, correct)]
    values = metrics.per_problem_metrics([n], [c], settings.ks, settings.taus, classes)
    out: dict[str, Any] = {
        name: float(values[name][0])
        for name in settings.metric_names() + settings.diversity_names()
    }
    out["n"] = n
    out["c"] = c
    return out


class PasskTask(ConfigurableTask):
    """A generate-until task that samples n completions per problem and scores them all."""

    def __init__(self, config: dict[str, Any] | None = None, **kwargs: Any) -> None:
        cfg = dict(config or {})
        cfg.pop("class", None)  # lm_eval's factory leaves it in; TaskConfig has no such field
        metadata = dict(cfg.get("metadata") or {})
        self.settings = PasskSettings.from_metadata(
            metadata, default_n=int(cfg.get("repeats") or DEFAULT_N)
        )
        cfg["repeats"] = self.settings.n
        cfg["metric_list"] = metric_list(self.settings)
        cfg["process_results"] = self._score
        options = {GRADE_OPTIONS[key]: metadata[key] for key in GRADE_OPTIONS if key in metadata}
        if options:
            cfg["filter_list"] = _bind_filter_options(cfg.get("filter_list"), options)
        super().__init__(config=cfg, **kwargs)

    def _score(self, doc: dict, results: list[Any]) -> dict[str, Any]:
        # One request per problem (generate_until); its filtered value is the verdict list.
        (verdicts,) = results
        return score_problem(verdicts, self.settings)


def _bind_filter_options(filter_list: Any, options: dict[str, Any]) -> Any:
    if not isinstance(filter_list, list):
        return filter_list
    bound = []
    for entry in filter_list:
        steps = []
        for step in entry.get("filter", []):
            step = dict(step)
            if step.get("function") == "custom" and callable(step.get("filter_fn")):
                step["filter_fn"] = functools.partial(step["filter_fn"], **options)
            steps.append(step)
        bound.append({**entry, "filter": steps})
    return bound


# ---------------------------------------------------------------- filters: grade all samples


def encode_verdict(verdict: Verdict) -> str:
    """One sample's verdict as the JSON object string stored in filtered_resps."""
    return json.dumps(verdict.to_dict(), ensure_ascii=False)


def parse_verdicts(entries: Sequence[Mapping[str, Any] | str]) -> list[dict[str, Any]]:
    """Per-sample verdict dicts from a logged sample's filtered_resps entry (JSON strings)."""
    return [dict(e) if isinstance(e, Mapping) else json.loads(e) for e in entries]


def _verdict_lists(resps: Sequence[Sequence[str]], verdicts: Sequence[Verdict]) -> list[list[str]]:
    """Regroup a flat list of verdicts (problem-major order) into one list per problem."""
    out, start = [], 0
    for samples in resps:
        out.append([encode_verdict(v) for v in verdicts[start : start + len(samples)]])
        start += len(samples)
    return out


def grade_gsm8k(
    resps: Sequence[Sequence[str]], docs: Sequence[dict], **options: Any
) -> list[list[str]]:
    """lm_eval custom filter: GSM8K verdicts for every sample of every problem."""
    from passk_plugin.graders import gsm8k

    del options  # number matching needs no timeout, and is too quick to share out
    return [
        [encode_verdict(v) for v in gsm8k.grade_problem(samples, doc)]
        for samples, doc in zip(resps, docs, strict=True)
    ]


def grade_math(
    resps: Sequence[Sequence[str]],
    docs: Sequence[dict],
    timeout: float | None = None,
    workers: int | None = None,
    **options: Any,
) -> list[list[str]]:
    """lm_eval custom filter: MATH verdicts (math-verify equivalence) for every sample.

    Each distinct normalised answer of a problem is checked once; problems are checked in
    parallel worker processes (`grade_workers`, default every CPU) when there are enough.
    """
    from passk_plugin.graders import math_pool

    del options
    verdicts = math_pool.grade_problems(
        list(zip(resps, docs, strict=True)),
        timeout=5.0 if timeout is None else float(timeout),
        workers=None if workers is None else int(workers),
    )
    return [[encode_verdict(v) for v in problem] for problem in verdicts]


def grade_humaneval(
    resps: Sequence[Sequence[str]],
    docs: Sequence[dict],
    timeout: float | None = None,
    workers: int | None = None,
    **options: Any,
) -> list[list[str]]:
    """lm_eval custom filter: run every sample's tests, in parallel over the whole task."""
    from passk_plugin.graders import humaneval

    del options
    kwargs: dict[str, Any] = {}
    if timeout is not None:
        kwargs["timeout"] = float(timeout)
    if workers is not None:
        kwargs["workers"] = int(workers)
    pairs = [(text, doc) for samples, doc in zip(resps, docs, strict=True) for text in samples]
    return _verdict_lists(resps, humaneval.grade_many(pairs, **kwargs))


# ---------------------------------------------------------------- prompts and targets


def gsm8k_target(doc: dict) -> str:
    """Few-shot exemplars carry their worked answer in `target`; test rows their gold number."""
    if "target" in doc:
        return str(doc["target"])
    from passk_plugin.graders import gsm8k

    return gsm8k.gold_answer(doc)


def math_target(doc: dict) -> str:
    """Few-shot exemplars show their whole solution; test rows give their gold answer."""
    if doc.get("few_shot"):
        return str(doc["solution"])
    from passk_plugin.graders import math as math_grader

    return str(math_grader.gold_answer(doc))


def humaneval_prompt(doc: dict) -> str:
    """The function signature and docstring, for the model to continue."""
    return str(doc["prompt"])


HUMANEVAL_INSTRUCTION = (
    "Complete the following Python function. Reply with the complete function, including "
    "its signature and any imports it needs, in a single ```python code block."
)


def humaneval_instruct_prompt(doc: dict) -> str:
    """A chat-friendly request for the whole function in a fenced code block."""
    return f"{HUMANEVAL_INSTRUCTION}\n\n```python\n{doc['prompt'].rstrip()}\n```\n"


# The Minerva 4-shot prompt (Lewkowycz et al. 2022), as lm_eval's minerva_math uses it.
MINERVA_FEWSHOT: tuple[dict[str, str], ...] = (
    {
        "problem": "Find the domain of the expression  $\\frac{\\sqrt{x-2}}{\\sqrt{5-x}}$.",
        "solution": "The expressions inside each square root must be non-negative. Therefore, "
        "$x-2 \\ge 0$, so $x\\ge2$, and $5 - x \\ge 0$, so $x \\le 5$. Also, the denominator "
        "cannot be equal to zero, so $5-x>0$, which gives $x<5$. Therefore, the domain of the "
        "expression is $\\boxed{[2,5)}$.\nFinal Answer: The final answer is $[2,5)$. I hope it "
        "is correct.",
    },
    {
        "problem": "If $\\det \\mathbf{A} = 2$ and $\\det \\mathbf{B} = 12,$ then find "
        "$\\det (\\mathbf{A} \\mathbf{B}).$",
        "solution": "We have that $\\det (\\mathbf{A} \\mathbf{B}) = (\\det \\mathbf{A})"
        "(\\det \\mathbf{B}) = (2)(12) = \\boxed{24}.$\nFinal Answer: The final answer is "
        "$24$. I hope it is correct.",
    },
    {
        "problem": "Terrell usually lifts two 20-pound weights 12 times. If he uses two "
        "15-pound weights instead, how many times must Terrell lift them in order to lift the "
        "same total weight?",
        "solution": "If Terrell lifts two 20-pound weights 12 times, he lifts a total of "
        "$2\\cdot 12\\cdot20=480$ pounds of weight.  If he lifts two 15-pound weights instead "
        "for $n$ times, he will lift a total of $2\\cdot15\\cdot n=30n$ pounds of weight.  "
        "Equating this to 480 pounds, we can solve for $n$:\n\\begin{align*}\n30n&=480\\\\\n"
        "\\Rightarrow\\qquad n&=480/30=\\boxed{16}\n\\end{align*}\nFinal Answer: The final "
        "answer is $16$. I hope it is correct.",
    },
    {
        "problem": "If the system of equations\n\n\\begin{align*}\n6x-4y&=a,\\\\\n6y-9x &=b.\n"
        "\\end{align*}has a solution $(x, y)$ where $x$ and $y$ are both nonzero,\nfind "
        "$\\frac{a}{b},$ assuming $b$ is nonzero.",
        "solution": "If we multiply the first equation by $-\\frac{3}{2}$, we obtain\n\n"
        "$$6y-9x=-\\frac{3}{2}a.$$Since we also know that $6y-9x=b$, we have\n\n"
        "$$-\\frac{3}{2}a=b\\Rightarrow\\frac{a}{b}=\\boxed{-\\frac{2}{3}}.$$\nFinal Answer: "
        "The final answer is $-\\frac{2}{3}$. I hope it is correct.",
    },
)


def minerva_fewshot() -> list[dict[str, str]]:
    """The four Minerva exemplars, marked `few_shot` so math_target shows their solutions."""
    return [{**example, "few_shot": "1"} for example in MINERVA_FEWSHOT]
