"""Samples per second of ``hf-passk`` against stock ``hf`` on the same Pass@k requests.

Both backends get the same ``generate_until`` requests, built by lm_eval from passk's GSM8K
task (n identical requests per problem, as ``repeats`` makes them), with the same model, the
same sampling settings and the same number of sequences decoded together (stock ``hf``'s
``batch_size``, hf-passk's ``max_num_seqs``). Only ``generate_until`` is timed. The two run
alternately, ``--repeats`` times each; medians are reported.

Models (random weights, built locally, no hub):

- ``tiny``: the test model (Llama, hidden 64, 2 layers, 512-token vocabulary) on the
  zero-shot GSM8K prompt;
- ``qwen``: Qwen2-0.5B's width (hidden 896, 14 heads, 2 KV heads, MLP 4864) with
  ``--layers`` layers and a byte-level BPE vocabulary trained on GSM8K's train split, on the
  8-shot GSM8K chain-of-thought prompt (about 900 tokens).

Random-weight models almost never write a stop string, so generation length is set by
``--max-gen-toks``. Generated tokens are counted inside each backend (stock ``hf``: the
non-padding tokens ``generate`` returns, which include any a row makes after its own stop while
the rest of its batch runs on; hf-passk: the tokens each sample got). Wall-clock time is the
main measure; process CPU time is reported beside it because the machine may be shared.

``--phases`` also times the same requests with ``max_gen_toks=1`` (prompt prefill and one token)
and prints each backend's CPU seconds split into that and the rest (decoding), and the share of
the full run the prefill takes.

    .venv/bin/python bench/bench_hf_passk.py --configs tiny,qwen --n 16 --problems 2 [--phases]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from _common import (  # noqa: E402
    build_requests,
    gsm8k_texts,
    qwen_width_config,
    save_random_qwen,
    write_json,
)
from lm_eval.api.instance import Instance  # noqa: E402
from lm_eval.models.huggingface import HFLM  # noqa: E402

from passk_plugin.backends.hf import HFPassKLM  # noqa: E402

CONFIGS: dict[str, dict[str, Any]] = {
    "tiny": {"task": "gsm8k_passk_zeroshot"},
    "qwen": {"task": "gsm8k_passk"},
}


def build_model(config: str, root: Path, layers: int) -> Path:
    from passk_plugin.demo.tiny import build_tiny_llama, build_tokenizer, default_corpus

    out = root / config
    if config == "tiny":
        return build_tiny_llama(out, tokenizer=build_tokenizer(default_corpus()))
    tokenizer = build_tokenizer(gsm8k_texts(), vocab_size=32768)
    return save_random_qwen(qwen_width_config(tokenizer, layers), tokenizer, out, seed=0)


class CountingHF(HFLM):
    """Stock hf, counting the tokens it generates."""

    generated = 0

    def _model_generate(self, context, max_length, stop, **generation_kwargs):
        out = super()._model_generate(context, max_length, stop, **generation_kwargs)
        self.generated += int((out[:, context.shape[1] :] != self.tokenizer.pad_token_id).sum())
        return out


class CountingPassK(HFPassKLM):
    """hf-passk, counting the tokens it generates."""

    generated = 0

    def sample(self, *args, **kwargs):
        out = super().sample(*args, **kwargs)
        self.generated += sum(len(s) for unit in out for s in unit)
        return out


def timed(lm: CountingHF | CountingPassK, reqs: list[Instance]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds and generated tokens of one generate_until call."""
    lm.generated = 0
    wall, cpu = time.perf_counter(), time.process_time()
    lm.generate_until(reqs, disable_tqdm=True)
    return time.perf_counter() - wall, time.process_time() - cpu, lm.generated


def run_config(config: str, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    model_dir = build_model(config, root, args.layers)
    reqs = build_requests(CONFIGS[config]["task"], args.n, args.problems, args.max_gen_toks)
    common = {"pretrained": str(model_dir), "device": "cpu", "dtype": "float32"}
    backends: dict[str, CountingHF | CountingPassK] = {
        "hf": CountingHF(**common, batch_size=args.batch_size),
        "hf-passk": CountingPassK(**common, max_num_seqs=args.batch_size, seed=0),
    }
    tokenizer = backends["hf"].tokenizer
    prompt_tokens = [len(tokenizer(r.args[0]).input_ids) for r in reqs[:: args.n]]
    context, gen_kwargs = reqs[0].args
    warm_up = [
        Instance("generate_until", {}, (context[-200:], {**gen_kwargs, "max_gen_toks": 2}), 0)
    ]
    for lm in backends.values():
        lm.generate_until(warm_up, disable_tqdm=True)

    runs: dict[str, list[tuple[float, float, int]]] = {name: [] for name in backends}
    for rep in range(args.repeats):
        names = list(backends) if rep % 2 == 0 else list(reversed(backends))
        for name in names:
            wall, cpu, tokens = timed(backends[name], reqs)
            runs[name].append((wall, cpu, tokens))
            print(
                f"  {config} {name} repeat {rep}: {wall:.2f} s wall, {cpu:.2f} s cpu, "
                f"{tokens} tokens",
                file=sys.stderr,
                flush=True,
            )

    result: dict[str, Any] = {
        "config": config,
        "task": CONFIGS[config]["task"],
        "model_params": sum(p.numel() for p in backends["hf"].model.parameters()),
        "vocab": len(tokenizer),
        "problems": args.problems,
        "n": args.n,
        "samples": len(reqs),
        "max_gen_toks": args.max_gen_toks,
        "batch_size": args.batch_size,
        "prompt_tokens_median": statistics.median(prompt_tokens),
        "repeats": args.repeats,
    }
    for name in backends:
        wall = statistics.median(r[0] for r in runs[name])
        tokens = statistics.median(r[2] for r in runs[name])
        result[name] = {
            "wall_s": [r[0] for r in runs[name]],
            "cpu_s": [r[1] for r in runs[name]],
            "tokens": [r[2] for r in runs[name]],
            "median_s": wall,
            "median_cpu_s": statistics.median(r[1] for r in runs[name]),
            "samples_per_s": len(reqs) / wall,
            "tokens_per_s": tokens / wall,
        }
    result["speedup"] = result["hf"]["median_s"] / result["hf-passk"]["median_s"]
    result["cpu_speedup"] = result["hf"]["median_cpu_s"] / result["hf-passk"]["median_cpu_s"]
    if args.phases:
        short = build_requests(CONFIGS[config]["task"], args.n, args.problems, 1)
        prefill: dict[str, list[float]] = {name: [] for name in backends}
        for rep in range(args.repeats):
            for name in list(backends) if rep % 2 == 0 else list(reversed(backends)):
                prefill[name].append(timed(backends[name], short)[1])
        for name in backends:
            result[name]["prefill_cpu_s"] = statistics.median(prefill[name])
    return result


def phases_report(results: list[dict[str, Any]]) -> str:
    lines = [
        "| model | backend | prefill + 1 token, cpu s | max_gen_toks tokens, cpu s "
        "| decode part, cpu s | prefill share |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        for name in ("hf", "hf-passk"):
            b = r[name]
            full, first = b["median_cpu_s"], b["prefill_cpu_s"]
            lines.append(
                f"| {r['config']} | {name} | {first:.2f} | {full:.2f} | {full - first:.2f} "
                f"| {first / full:.0%} |"
            )
    return "\n".join(lines)


def report(results: list[dict[str, Any]]) -> str:
    lines = [
        "| model | prompt tok | n x problems | max_gen_toks | batch | backend | median wall s "
        "| median cpu s | samples/s | tokens/s | speed-up (wall, cpu) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        speedup = f"{r['speedup']:.2f}x, {r['cpu_speedup']:.2f}x"
        for name in ("hf", "hf-passk"):
            b = r[name]
            model = f"{r['config']} ({r['model_params'] / 1e6:.1f}M)"
            lines.append(
                f"| {model} | {r['prompt_tokens_median']:.0f} "
                f"| {r['n']} x {r['problems']} | {r['max_gen_toks']} | {r['batch_size']} | {name} "
                f"| {b['median_s']:.2f} | {b['median_cpu_s']:.2f} | {b['samples_per_s']:.2f} "
                f"| {b['tokens_per_s']:.1f} | {speedup if name == 'hf-passk' else ''} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="tiny,qwen", help="comma list of: tiny, qwen")
    parser.add_argument("--n", type=int, default=16, help="samples per problem")
    parser.add_argument("--problems", type=int, default=2)
    parser.add_argument("--max-gen-toks", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16, help="sequences decoded together")
    parser.add_argument("--layers", type=int, default=4, help="layers of the qwen-width model")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--phases", action="store_true", help="also split prefill from decode")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = sorted(set(configs) - set(CONFIGS))
    if unknown:
        parser.error(f"unknown configs {unknown}; choose from {sorted(CONFIGS)}")

    results = []
    with tempfile.TemporaryDirectory(prefix="bench_hf_passk_") as tmp:
        for config in configs:
            results.append(run_config(config, args, Path(tmp)))
    env = {
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    print(report(results))
    if args.phases:
        print("\n" + phases_report(results))
    print(f"\n{env}")
    if args.out:
        write_json(args.out, {"env": env, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
