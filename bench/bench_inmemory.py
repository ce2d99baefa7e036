"""Per-point overhead of a merge sweep: in-memory merging against mergekit-yaml + from_pretrained.

For each grid point of a WiSE-FT sweep the question is how long it takes from "recipe" to
"a model ready to generate":

- stock:     ``mergekit-yaml RECIPE OUT`` (a subprocess, as a user would run it), then
             ``AutoModelForCausalLM.from_pretrained(OUT)``;
- in-process: ``passk_plugin.merge.merge_recipe`` (mergekit's run_merge without the CLI
             start-up), then ``from_pretrained``;
- in-memory: ``merge_in_memory`` on checkpoints loaded once, then ``load_merged`` into one
             resident model (its one-time set-up is reported separately).

Sizes: ``tiny`` (the test models: Llama, hidden 64, 2 layers) and ``0.5b`` (a Qwen2 model
with Qwen2.5-0.5B's shapes and random weights, built locally). Medians over the grid points;
the first in-memory point is also checked to be bit-identical to the stock output.

    .venv/bin/python bench/bench_inmemory.py --sizes tiny,0.5b --points 5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from _common import timed  # noqa: E402

from passk_plugin.merge import ResidentCheckpoints, load_merged, merge_in_memory, merge_recipe  # noqa: E402
from passk_plugin.recipes import read_manifest, wise_ft_grid, write_recipes  # noqa: E402

QWEN_05B = dict(
    hidden_size=896,
    num_hidden_layers=24,
    num_attention_heads=14,
    num_key_value_heads=2,
    intermediate_size=4864,
    vocab_size=151936,
    tie_word_embeddings=True,
    max_position_embeddings=32768,
)


def build_pair(size: str, root: Path, dtype: str, layers: int) -> tuple[Path, Path]:
    """Two checkpoints of one architecture: early, and late = early + noise."""
    from passk_plugin.demo.tiny import build_tiny_llama, build_tokenizer, default_corpus

    tokenizer = build_tokenizer(default_corpus())
    if size == "tiny":
        early = build_tiny_llama(root / "early", tokenizer=tokenizer, seed=1, dtype=dtype)
        late = build_tiny_llama(root / "late", tokenizer=tokenizer, seed=2, dtype=dtype)
        return early, late
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(**{**QWEN_05B, "num_hidden_layers": layers})
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config).to(getattr(torch, dtype))
    early, late = root / "early", root / "late"
    model.save_pretrained(early)
    tokenizer.save_pretrained(early)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param), alpha=0.01)
    model.save_pretrained(late)
    tokenizer.save_pretrained(late)
    del model
    return early, late


def bench_size(size: str, args: argparse.Namespace, root: Path) -> dict:
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    dtype = getattr(torch, args.dtype)
    load_start = os.getloadavg()
    build_s, (early, late) = timed(lambda: build_pair(size, root, args.dtype, args.layers))
    alphas = [round((i + 1) / (args.points + 1), 3) for i in range(args.points)]
    recipes = read_manifest(write_recipes(wise_ft_grid(early, late, alphas), root / "recipes"))
    mergekit_yaml = Path(sys.executable).with_name("mergekit-yaml")

    def load(path: Path):
        return AutoModelForCausalLM.from_pretrained(path, dtype=dtype)

    ids = torch.tensor([[1, 5, 9, 14, 3, 7, 2, 8]])

    def forward(m) -> float:
        start = time.perf_counter()
        with torch.no_grad():
            m(input_ids=ids)
        return time.perf_counter() - start

    rows: dict[str, list[float]] = {
        k: []
        for k in (
            f"{path}_{step}"
            for path in ("stock", "inproc", "mem")
            for step in ("merge", "load", "forward")
        )
    }
    # one-time set-up of the in-memory path
    resident_s, resident = timed(lambda: ResidentCheckpoints([early, late]))
    model_s, model = timed(lambda: load(early))
    identical = None
    for i, recipe in enumerate(recipes):
        out = root / "out"
        start = time.perf_counter()
        subprocess.run(
            [str(mergekit_yaml), str(recipe.path), str(out)], check=True, capture_output=True
        )
        rows["stock_merge"].append(time.perf_counter() - start)
        start = time.perf_counter()
        stock_model = load(out)
        rows["stock_load"].append(time.perf_counter() - start)
        rows["stock_forward"].append(forward(stock_model))
        stock_state = {k: v.clone() for k, v in stock_model.state_dict().items()} if i == 0 else {}
        del stock_model
        shutil.rmtree(out)

        start = time.perf_counter()
        merge_recipe(recipe.path, out)
        rows["inproc_merge"].append(time.perf_counter() - start)
        start = time.perf_counter()
        inproc_model = load(out)
        rows["inproc_load"].append(time.perf_counter() - start)
        rows["inproc_forward"].append(forward(inproc_model))
        del inproc_model
        shutil.rmtree(out)

        start = time.perf_counter()
        state = merge_in_memory(recipe.path, resident)
        rows["mem_merge"].append(time.perf_counter() - start)
        start = time.perf_counter()
        load_merged(model, state)
        rows["mem_load"].append(time.perf_counter() - start)
        rows["mem_forward"].append(forward(model))
        del state
        if stock_state:
            own = model.state_dict()
            identical = all(torch.equal(own[k], v) for k, v in stock_state.items())
            del stock_state
    med = {k: statistics.median(v) for k, v in rows.items()}
    # "ready" = merged and loaded; "+fwd" adds the first forward pass, which is where lazily
    # memory-mapped weights from from_pretrained are actually read.
    ready = {p: med[f"{p}_merge"] + med[f"{p}_load"] for p in ("stock", "inproc", "mem")}
    fwd = {p: ready[p] + med[f"{p}_forward"] for p in ready}
    n_params = sum(p.numel() for p in model.parameters())
    return {
        "size": size,
        "layers": args.layers if size != "tiny" else 2,
        "params": n_params,
        "dtype": args.dtype,
        "points": len(recipes),
        "threads": torch.get_num_threads(),
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
        "build_s": build_s,
        "setup_s": resident_s + model_s,
        "medians_s": med,
        "ready_s": ready,
        "ready_fwd_s": fwd,
        "ratio_vs_stock": ready["stock"] / ready["mem"],
        "ratio_vs_inproc": ready["inproc"] / ready["mem"],
        "ratio_fwd_vs_stock": fwd["stock"] / fwd["mem"],
        "bit_identical_first_point": identical,
        "raw_s": rows,
    }


def table(results: list[dict]) -> str:
    lines = [
        "| size | params | dtype | points | mergekit-yaml + from_pretrained | "
        "passk merge (in-process) + from_pretrained | in-memory merge + load_merged | "
        "ratio vs mergekit-yaml | ratio vs in-process | ratio incl. first forward | "
        "one-time set-up | bit-identical |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        cell = {
            p: f"{r['ready_s'][p]:.2f} s ({r['medians_s'][p + '_merge']:.2f} + "
            f"{r['medians_s'][p + '_load']:.2f})"
            for p in ("stock", "inproc", "mem")
        }
        lines.append(
            f"| {r['size']} ({r['layers']} layers) | {r['params'] / 1e6:.1f}M | {r['dtype']} | "
            f"{r['points']} | {cell['stock']} | {cell['inproc']} | {cell['mem']} | "
            f"{r['ratio_vs_stock']:.1f}x | {r['ratio_vs_inproc']:.1f}x | "
            f"{r['ratio_fwd_vs_stock']:.1f}x | {r['setup_s']:.2f} s | "
            f"{r['bit_identical_first_point']} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="tiny,0.5b", help="comma list of tiny, 0.5b")
    parser.add_argument("--points", type=int, default=5, help="grid points (repeats) per size")
    parser.add_argument("--dtype", default="bfloat16", help="checkpoint dtype [bfloat16]")
    parser.add_argument("--layers", type=int, default=24, help="layers of the 0.5b model [24]")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--workdir", type=Path, help="where checkpoints go [a temporary dir]")
    args = parser.parse_args()
    results = []
    for size in args.sizes.split(","):
        with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
            result = bench_size(size.strip(), args, Path(tmp))
        print(json.dumps({k: v for k, v in result.items() if k != "raw_s"}, indent=1), flush=True)
        results.append(result)
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
