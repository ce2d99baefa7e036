"""`passk sweep --in-memory --model vllm-passk`: one engine, weights swapped per point.

Skipped where vLLM is not installed. Engines start in tens of seconds on two cores, so the
model is a tiny random Llama (float32, eager mode, a small KV cache) and the grid has three
points.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("vllm")

from passk_plugin.backends.vllm import VLLMPassK  # noqa: E402
from passk_plugin.cli import main  # noqa: E402
from passk_plugin.sweep_store import RunStore  # noqa: E402

TASK = "gsm8k_passk"
MODEL_ARGS = (
    "dtype=float32,enforce_eager=True,max_model_len=1024,"
    f"kv_cache_memory_bytes={256 * 2**20},seed=1234"
)
FLAGS = [
    "--tasks", TASK,
    "--num-fewshot", "1",
    "--n", "4",
    "--limit", "2",
    "--temperature", "1.0",
    "--max-gen-toks", "8",
    "--seed", "1234",
    "--model", "vllm-passk",
    "--model-args", MODEL_ARGS,
    "--alphas", "0.5,1",
    "--temperatures", "1",
    "--no-report",
    "--no-progress",
]  # fmt: skip
POINT_IDS = ["wise-ft_a0.500", "wise-ft_a1.000", "late-T1"]


@pytest.fixture(scope="module")
def pair(tmp_path_factory, tiny_tokenizer) -> tuple[Path, Path]:
    """An early and a late tiny Llama of the size the vLLM backend tests use."""
    from passk_plugin.demo.tiny import build_tiny_llama

    root = tmp_path_factory.mktemp("vllm-pair")
    kw = {"tokenizer": tiny_tokenizer, "hidden_size": 128, "num_heads": 4}
    return build_tiny_llama(root / "early", seed=1, **kw), build_tiny_llama(
        root / "late", seed=2, **kw
    )


class EngineCount:
    """Wraps VLLMPassK.__init__: records every engine built, and shuts them down at the end."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.lms: list[VLLMPassK] = []
        real = VLLMPassK.__init__

        def init(lm: VLLMPassK, *args, **kwargs) -> None:
            real(lm, *args, **kwargs)
            self.lms.append(lm)

        monkeypatch.setattr(VLLMPassK, "__init__", init)

    def shutdown(self) -> None:
        for lm in self.lms:
            lm.model.llm_engine.engine_core.shutdown()


def _sweep(run_dir: Path, pair: tuple[Path, Path], *extra: str) -> None:
    early, late = pair
    flags = ["--early", str(early), "--late", str(late), *FLAGS, "--out", str(run_dir)]
    assert main(["sweep", *flags, *extra]) == 0


@pytest.mark.slow
def test_in_memory_vllm_sweep_matches_the_disk_sweep(pair, shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("PASSK_DATA_DIR", str(shared_data))
    engines = EngineCount(monkeypatch)
    updates: list[int] = []
    loads: list[str] = []
    real_update, real_load = VLLMPassK.update_weights, VLLMPassK.load_weights
    monkeypatch.setattr(
        VLLMPassK, "update_weights", lambda lm, w: updates.append(len(w)) or real_update(lm, w)
    )
    monkeypatch.setattr(
        VLLMPassK, "load_weights", lambda lm, p: loads.append(str(p)) or real_load(lm, p)
    )
    try:
        _sweep(tmp_path / "disk", pair)
        assert len(engines.lms) == len(POINT_IDS)  # one engine per point from disk
        engines.shutdown()
        engines.lms.clear()
        assert updates == [] and loads == []

        _sweep(tmp_path / "mem", pair, "--in-memory")
        assert len(engines.lms) == 1  # started once, from the early checkpoint
        assert updates and len(updates) == 2  # the two merge points
        assert loads == [str(pair[1].resolve())]  # the baseline: the late checkpoint
        assert not (tmp_path / "mem" / "merged").exists()
    finally:
        engines.shutdown()

    disk, mem = RunStore(tmp_path / "disk"), RunStore(tmp_path / "mem")
    assert mem.done_ids() == disk.done_ids() == sorted(POINT_IDS)
    for pid in POINT_IDS:
        name = f"samples_{TASK}.jsonl"
        got = (mem.point_dir(pid) / name).read_bytes()
        assert got == (disk.point_dir(pid) / name).read_bytes(), pid
    # alpha 1 is the late checkpoint: the swapped-in merge samples like the loaded checkpoint,
    # and unlike the alpha 0.5 merge (the weights really changed between points)
    resps = {pid: _resps(mem, pid) for pid in POINT_IDS}
    assert resps["wise-ft_a1.000"] == resps["late-T1"] != resps["wise-ft_a0.500"]


def _resps(store: RunStore, pid: str) -> list:
    lines = (store.point_dir(pid) / f"samples_{TASK}.jsonl").read_text().splitlines()
    return [json.loads(line)["resps"] for line in lines]
