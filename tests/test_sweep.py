from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import pytest
from sweep_counting import Counter

from passk_plugin.cli import main
from passk_plugin.cli import sweep as sweep_cli
from passk_plugin.errors import UsageError
from passk_plugin.executors.local import LocalExecutor
from passk_plugin.grid import GridPoint, Sampling
from passk_plugin.sweep import evaluation, preflight
from passk_plugin.sweep import point as point_mod
from passk_plugin.sweep.evaluation import lm_eval_kwargs, point_gen_kwargs
from passk_plugin.sweep.grids import build_points, temperature_points
from passk_plugin.sweep.point import run_point
from passk_plugin.sweep.reconcile import reconcile_settings
from passk_plugin.sweep.run import make_executor, run_sweep
from passk_plugin.sweep.settings import EvalSettings, RunOptions, SweepContext
from passk_plugin.sweep_store import RunStore

# ---------------------------------------------------------------------------- unit tests


def _merge_spec(pid: str, alpha: float, early: str = "/early") -> GridPoint:
    return GridPoint(
        id=pid, method="wise-ft", alpha=alpha, checkpoints=(early, "/late"),
        weights=(1 - alpha, alpha),
    )  # fmt: skip


def _base_spec(t: float) -> GridPoint:
    return GridPoint(
        id=f"late-T{t:g}", method="decoding", checkpoints=("/late",),
        sampling=Sampling(temperature=t),
    )  # fmt: skip


class FakeLab:
    """Stands in for mergekit and lm_eval: records calls, writes a merged dir, fakes results."""

    def __init__(self, fail_on: str | None = None):
        self.merged: list[str] = []
        self.evaluated: list[str] = []
        self.fail_on = fail_on

    def merge_point(self, ctx: SweepContext, spec: GridPoint) -> Path:
        self.merged.append(spec.id)
        out = RunStore(ctx.run_dir).merged_dir(spec.id)
        out.mkdir(parents=True, exist_ok=True)
        (out / "model.safetensors").write_bytes(b"weights")
        return out

    def evaluate(self, ctx: SweepContext, spec: GridPoint, model_ref) -> dict:
        if spec.id == self.fail_on:
            raise KeyboardInterrupt
        self.evaluated.append(spec.id)
        p1 = 0.25 if spec.alpha is None else spec.alpha / 2
        return {
            "results": {"t": {"alias": "t", "pass@1,all": p1, "pass@1_stderr,all": 0.1}},
            "configs": {"t": {"generation_kwargs": {"temperature": 0.6}}},
            "config": {"model_args": {"pretrained": str(model_ref)}},
            "samples": {"t": [{"doc_id": 0, "arguments": [("q", {})], "resps": [["a"]],
                               "filtered_resps": [["v"]], "target": 1, "n": 2, "c": 1}]},
        }  # fmt: skip


@pytest.fixture
def lab(monkeypatch) -> FakeLab:
    """Fake merges and evaluations; the fake task "t" and fake checkpoints pass preflight."""
    fake = FakeLab()
    monkeypatch.setattr(point_mod, "merge_point", fake.merge_point)
    monkeypatch.setattr(evaluation, "evaluate", fake.evaluate)
    monkeypatch.setattr(
        preflight,
        "task_infos",
        lambda s: {t: preflight.TaskInfo(name=t, default_n=None, bench=None) for t in s.tasks},
    )
    monkeypatch.setattr(preflight, "check_points", lambda points: None)
    return fake


def _ctx(tmp_path, **options) -> SweepContext:
    return SweepContext(
        run_dir=str(tmp_path / "run"),
        settings=EvalSettings(tasks=["t"], n=2),
        options=RunOptions(**options),
    )


def test_settings_are_checked():
    with pytest.raises(ValueError, match="pretrained"):
        EvalSettings(model_args={"pretrained": "x"})
    with pytest.raises(ValueError, match="larger than the number of samples"):
        EvalSettings(n=4, k="1,8")
    with pytest.raises(ValueError, match="no tasks"):
        EvalSettings(tasks=[])
    with pytest.raises(ValueError, match="at least 2 checkpoints"):
        GridPoint(id="p", method="wise-ft", alpha=0.5, checkpoints=("/x",), weights=(1.0,))
    with pytest.raises(ValueError, match="bad point id"):
        GridPoint(id="../p", method="checkpoint", checkpoints=("/x",))


def test_point_gen_kwargs():
    s = EvalSettings(gen_kwargs={"max_gen_toks": 8, "temperature": 0.6})
    assert point_gen_kwargs(s, _merge_spec("a", 0.5)) == {
        "max_gen_toks": 8,
        "temperature": 0.6,
        "do_sample": True,
    }
    assert point_gen_kwargs(s, _base_spec(0.0))["do_sample"] is False  # greedy
    assert point_gen_kwargs(EvalSettings(), _merge_spec("a", 0.5)) == {}  # the task's own
    kept = EvalSettings(gen_kwargs={"temperature": 0.7, "do_sample": False})
    assert point_gen_kwargs(kept, _merge_spec("a", 0.5))["do_sample"] is False


def test_lm_eval_kwargs(tmp_path):
    ctx = SweepContext(
        run_dir=str(tmp_path),
        settings=EvalSettings(
            tasks=["t"], model="hf", model_args={"dtype": "float32"}, seed=7, limit=3
        ),
        options=RunOptions(batch_size=8, device="cpu"),
    )
    kw = lm_eval_kwargs(ctx, _base_spec(0.5), "/ckpt")
    assert kw["model"] == "hf"
    assert kw["model_args"] == {"dtype": "float32", "pretrained": "/ckpt"}
    assert kw["gen_kwargs"] == {"temperature": 0.5, "do_sample": True}
    assert {kw[k] for k in ("random_seed", "numpy_random_seed", "torch_random_seed")} == {7}
    assert (kw["limit"], kw["batch_size"], kw["device"], kw["log_samples"]) == (3, 8, "cpu", True)
    lm = object()
    kw = lm_eval_kwargs(ctx, _merge_spec("a", 0.5), lm)
    assert kw["model"] is lm and "model_args" not in kw and kw["gen_kwargs"] is None


def test_device_and_seed_are_named(tmp_path, monkeypatch):
    """lm_eval drops device=None and defaults to cuda: the sweep always names one.

    hf-passk (the default model) gets the run's seed as a model argument.
    """
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    ctx = SweepContext(run_dir=str(tmp_path), settings=EvalSettings(tasks=["t"], seed=5))
    kw = lm_eval_kwargs(ctx, _base_spec(0.5), "/ckpt")
    assert kw["device"] == "cpu" and kw["model"] == "hf-passk"
    assert kw["model_args"] == {"seed": 5, "pretrained": "/ckpt"}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert lm_eval_kwargs(ctx, _base_spec(0.5), "/ckpt")["device"] == "cuda"
    given = ctx.model_copy(update={"options": RunOptions(device="cuda:1")})
    assert lm_eval_kwargs(given, _base_spec(0.5), "/ckpt")["device"] == "cuda:1"


def test_task_metadata():
    meta = evaluation.task_metadata(EvalSettings(n=8, k="1,8", data_dir="/d"))
    assert meta == {"n": 8, "k": "1,8", "data_dir": "/d"}
    assert evaluation.task_metadata(EvalSettings()) == {}


def test_temperature_points(tmp_path):
    pts = temperature_points(tmp_path, [0.5, 1.0])
    assert [p.id for p in pts] == ["late-T0.5", "late-T1"]
    assert all(p.checkpoint == str(tmp_path.resolve()) and not p.needs_merge for p in pts)
    assert [p.sampling.temperature for p in pts] == [0.5, 1.0]
    with pytest.raises(ValueError, match=">= 0"):
        temperature_points(tmp_path, [-1.0])
    with pytest.raises(FileNotFoundError):
        temperature_points(tmp_path / "missing", [1.0])


def test_run_point_stores_and_is_idempotent(tmp_path, lab):
    ctx = _ctx(tmp_path)
    spec = _merge_spec("wise-ft_a0.500", 0.5)
    res = run_point(spec, ctx)
    assert res.status == "done" and res.metrics == {"t": {"pass@1": 0.25}}
    store = RunStore(ctx.run_dir)
    pdir = store.point_dir(spec.id)
    names = sorted(p.name for p in pdir.iterdir())
    assert names == ["DONE.json", "point.json", "results.json", "samples_t.jsonl"]
    stored = json.loads((pdir / "point.json").read_text())
    assert GridPoint.from_stored(stored, store.root) == spec
    assert "samples" not in json.loads((pdir / "results.json").read_text())
    assert json.loads((pdir / "samples_t.jsonl").read_text())["c"] == 1
    assert not store.merged_dir(spec.id).exists()  # merged weights removed after evaluation
    assert not (store.root / "merged").exists()
    assert run_point(spec, ctx).status == "skipped"
    assert lab.merged == lab.evaluated == [spec.id]


def test_keep_merged(tmp_path, lab):
    ctx = _ctx(tmp_path, keep_merged=True)
    run_point(_merge_spec("a", 0.5), ctx)
    assert (RunStore(ctx.run_dir).merged_dir("a") / "model.safetensors").is_file()


def test_baseline_points_are_not_merged(tmp_path, lab):
    run_point(_base_spec(0.7), _ctx(tmp_path))
    assert lab.merged == [] and lab.evaluated == ["late-T0.7"]


def test_interrupted_sweep_resumes_without_redoing_points(tmp_path, lab):
    specs = [_merge_spec("a", 0.0), _merge_spec("b", 0.5), _base_spec(1.0)]
    settings = EvalSettings(tasks=["t"], n=2)
    run_dir = tmp_path / "run"
    lab.fail_on = "b"
    with pytest.raises(KeyboardInterrupt):
        run_sweep(run_dir, specs, settings, report=False, progress=False)
    store = RunStore(run_dir)
    assert store.done_ids() == ["a"]
    first = (store.point_dir("a") / "results.json").stat()
    # a crash in the middle of writing "b" leaves a temp dir, which the rerun clears
    (store.points_root / ".tmp-b-dead").mkdir()
    lab.fail_on = None
    lab.merged.clear()
    lab.evaluated.clear()
    results = run_sweep(run_dir, specs, settings, report=False, progress=False)
    assert [r.status for r in results] == ["skipped", "done", "done"]
    assert lab.merged == ["b"] and lab.evaluated == ["b", "late-T1"]
    again = (store.point_dir("a") / "results.json").stat()
    assert (again.st_ino, again.st_mtime_ns) == (first.st_ino, first.st_mtime_ns)
    assert store.done_ids() == ["a", "b", "late-T1"]
    assert not list(store.points_root.glob(".tmp-*"))


def test_reconcile_settings(tmp_path):
    store = RunStore(tmp_path)
    s = EvalSettings(tasks=["t"], n=4)
    a, b = _merge_spec("a", 0.0), _merge_spec("b", 1.0)
    assert [p.id for p in reconcile_settings(store, s, [a], force=False)] == ["a"]
    # growing the grid is fine: earlier points stay comparable
    assert [p.id for p in reconcile_settings(store, s, [b], force=False)] == ["a", "b"]
    store.write_point("a", {"results.json": "{}"}, {})
    with pytest.raises(ValueError, match=r"n: 4 \(stored\) vs 8 \(now\).*--force"):
        reconcile_settings(store, EvalSettings(tasks=["t"], n=8), [a], force=False)
    moved = _merge_spec("a", 0.5, early="/elsewhere")
    with pytest.raises(ValueError, match="point a"):
        reconcile_settings(store, s, [moved], force=False)
    assert store.is_done("a")  # a refusal changes nothing
    reconcile_settings(store, EvalSettings(tasks=["t"], n=8), [a], force=True)
    assert not store.is_done("a")
    assert store.read_settings()["settings"]["n"] == 8


def test_run_sweep_refuses_bad_grids_and_options(tmp_path, lab):
    s = EvalSettings(tasks=["t"])
    with pytest.raises(ValueError, match="grid is empty"):
        run_sweep(tmp_path, [], s)
    with pytest.raises(ValueError, match="repeat"):
        run_sweep(tmp_path, [_base_spec(1.0), _base_spec(1.0)], s)
    twice = EvalSettings(tasks=["t"], model_args={"batch_size": 4})
    with pytest.raises(ValueError, match="batch_size is given twice"):
        run_sweep(tmp_path, [_base_spec(1)], twice, RunOptions(batch_size=8))
    vllm = EvalSettings(tasks=["t"], model="vllm")
    with pytest.raises(ValueError, match="--in-memory"):
        run_sweep(tmp_path / "v", [_base_spec(1)], vllm, RunOptions(in_memory=True))
    with pytest.raises(UsageError, match="unknown executor"):
        make_executor("nope")
    assert isinstance(make_executor("local", progress=False), LocalExecutor)
    assert not (tmp_path / "sweep.json").exists()  # nothing recorded for refused runs


def _args(**kw) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    sweep_cli.add_arguments(parser)
    argv = ["--out", "/tmp/unused"]
    for key, value in kw.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    return parser.parse_args(argv)


def test_cli_settings():
    args = _args(temperature=0.7, max_gen_toks=16, gen_kwargs="top_k=5", model_args="dtype=bf16",
                 tasks="a,b", limit="0.5")  # fmt: skip
    s = sweep_cli.settings_from_args(args)
    assert s.gen_kwargs == {"top_k": 5, "temperature": 0.7, "max_gen_toks": 16}
    assert s.model_args == {"dtype": "bf16"} and s.tasks == ["a", "b"] and s.limit == 0.5
    assert sweep_cli.settings_from_args(_args(limit="10")).limit == 10
    with pytest.raises(ValueError, match="--limit"):
        sweep_cli.settings_from_args(_args(limit="ten"))


def _grid(args: argparse.Namespace) -> list[GridPoint]:
    return build_points(sweep_cli.grid_request(args))


def test_cli_grid_errors(tmp_path):
    with pytest.raises(UsageError, match="nothing to run"):
        _grid(_args())
    with pytest.raises(UsageError, match="both --early and --late"):
        _grid(_args(early="/x"))
    with pytest.raises(UsageError, match="give --late"):
        _grid(_args(temperatures="0.5,1"))
    with pytest.raises(UsageError, match="drop --early"):
        _grid(_args(recipes="/r", alphas="0,1"))


def test_cli_reports_bad_input_in_one_line(tmp_path, capsys):
    rc = main(["sweep", "--late", str(tmp_path / "missing"), "--temperatures", "1",
               "--out", str(tmp_path / "run")])  # fmt: skip
    assert rc == 2
    assert "checkpoint not found" in capsys.readouterr().err


# ---------------------------------------------------------------------- end-to-end runs

TASK = "gsm8k_passk"
EVAL_FLAGS = [
    "--tasks", TASK,
    "--num-fewshot", "1",  # keeps the tiny model's prompts short
    "--n", "4",
    "--limit", "2",
    "--temperature", "1.0",
    "--max-gen-toks", "8",
    "--batch-size", "8",
    "--device", "cpu",
    "--seed", "1234",
    "--no-progress",
]  # fmt: skip
REPORT_FILES = [
    "leaderboard.md", "leaderboard.csv", "leaderboard.json", "leaderboard.html",
    "biasvar.md", "biasvar.csv", "biasvar.json",
    *(f"{p}_{TASK}.png" for p in ("passk_vs_k", "pass1_vs_passk", "metric_vs_alpha",
                                   "rho_hist", "biasvar", "forest", "diversity")),
    "paired.md", "paired.csv", "paired.json",
]  # fmt: skip
POINT_IDS = ["wise-ft_a0.000", "wise-ft_a0.500", "wise-ft_a1.000", "late-T0.5", "late-T1"]


def _grid_flags(early: Path, late: Path) -> list[str]:
    return ["--early", str(early), "--late", str(late), "--alphas", "0,0.5,1",
            "--temperatures", "0.5,1"]  # fmt: skip


@pytest.fixture(scope="module")
def offline_data(shared_data):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PASSK_DATA_DIR", str(shared_data))
        yield shared_data


@pytest.fixture(scope="module")
def sweep_run(tmp_path_factory, tiny_pair, offline_data) -> Path:
    """One uninterrupted sweep: 3 alphas + 2 temperatures, on CPU."""
    early, late = tiny_pair
    run_dir = tmp_path_factory.mktemp("sweep") / "run"
    rc = main(["sweep", *_grid_flags(early, late), *EVAL_FLAGS, "--out", str(run_dir)])
    assert rc == 0
    return run_dir


@pytest.mark.slow
def test_sweep_writes_points_and_report(sweep_run):
    store = RunStore(sweep_run)
    assert store.done_ids() == sorted(POINT_IDS)
    assert not (sweep_run / "merged").exists()  # merged weights deleted after evaluation
    assert sorted(p.name for p in store.recipes_dir.iterdir()) == sorted(
        ["manifest.json", *(f"{p}.yaml" for p in POINT_IDS[:3])]
    )
    for name in REPORT_FILES:
        assert (store.report_dir / name).stat().st_size > 0, name
    settings = store.read_settings()
    assert settings["settings"]["n"] == 4 and sorted(settings["points"]) == sorted(POINT_IDS)
    for pid in POINT_IDS:
        lines = (store.point_dir(pid) / f"samples_{TASK}.jsonl").read_text().splitlines()
        rows = [json.loads(line) for line in lines]
        assert len(rows) == 2 and all(r["n"] == 4 and 0 <= r["c"] <= 4 for r in rows)
        results = json.loads((store.point_dir(pid) / "results.json").read_text())
        temp = results["configs"][TASK]["generation_kwargs"]["temperature"]
        assert temp == {"late-T0.5": 0.5}.get(pid, 1.0)


@pytest.mark.slow
def test_leaderboard_equals_stored_results(sweep_run):
    store = RunStore(sweep_run)
    rows = {r["id"]: r for r in csv.DictReader((store.report_dir / "leaderboard.csv").open())}
    assert sorted(rows) == sorted(POINT_IDS)
    checked = 0
    for pid, row in rows.items():
        stored = json.loads((store.point_dir(pid) / "results.json").read_text())["results"][TASK]
        for key, value in stored.items():
            name, _, filt = key.partition(",")
            if filt != "all" or name.startswith(("n", "c")) or key == "alias":
                continue
            col = f"{TASK}/{name.replace('_stderr', '')}"
            col += "_stderr" if name.endswith("_stderr") else ""
            assert float(row[col]) == value, (pid, key)
            checked += 1
    # pass@1,2,4, G-Pass@2,4 at 3 taus, mG-Pass@2,4, maj@2,4, rho0/rho1 shares, distinct
    # answers and answer entropy, with their stderrs, for each point
    assert checked == len(POINT_IDS) * 2 * 17
    assert rows["late-T0.5"]["temperature"] == "0.5" and rows["wise-ft_a0.500"]["alpha"] == "0.5"


@pytest.mark.slow
def test_paired_deltas_are_differences_of_stored_metrics(sweep_run):
    store = RunStore(sweep_run)
    rows = json.loads((store.report_dir / "paired.json").read_text())
    assert {r["reference_role"] for r in rows} >= {"late", "early"}
    assert {r["metric"] for r in rows} >= {"pass@1", "pass@4", "maj@4"}
    for r in rows:
        a = json.loads((store.point_dir(r["point"]) / "results.json").read_text())["results"]
        b = json.loads((store.point_dir(r["reference"]) / "results.json").read_text())["results"]
        stored_a, stored_b = a[TASK][f"{r['metric']},all"], b[TASK][f"{r['metric']},all"]
        assert (r["a"], r["b"], r["delta"]) == (stored_a, stored_b, stored_a - stored_b)
        assert r["n_problems"] == 2 and 0 < r["p_holm"] <= 1
    assert (store.report_dir / f"forest_{TASK}.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.slow
def test_alpha_one_is_the_late_checkpoint(sweep_run):
    # 0*early + 1*late is exactly late, sampled with the same seed and temperature
    store = RunStore(sweep_run)
    a1 = [json.loads(x) for x in (store.point_dir("wise-ft_a1.000") / f"samples_{TASK}.jsonl")
          .read_text().splitlines()]  # fmt: skip
    t1 = [json.loads(x) for x in (store.point_dir("late-T1") / f"samples_{TASK}.jsonl")
          .read_text().splitlines()]  # fmt: skip
    assert [r["resps"] for r in a1] == [r["resps"] for r in t1]


@pytest.mark.slow
def test_rerun_redoes_nothing_and_refuses_other_settings(sweep_run, tiny_pair, monkeypatch,
                                                         capsys):  # fmt: skip
    ev, mg = Counter(evaluation.evaluate), Counter(point_mod.merge_point)
    monkeypatch.setattr(evaluation, "evaluate", ev)
    monkeypatch.setattr(point_mod, "merge_point", mg)
    before = (RunStore(sweep_run).report_dir / "leaderboard.csv").read_bytes()
    flags = [*_grid_flags(*tiny_pair), *EVAL_FLAGS, "--out", str(sweep_run)]
    assert main(["sweep", *flags]) == 0
    assert ev.ids == [] and mg.ids == []
    assert (RunStore(sweep_run).report_dir / "leaderboard.csv").read_bytes() == before
    capsys.readouterr()
    assert main(["sweep", *flags, "--max-gen-toks", "16"]) == 2
    err = capsys.readouterr().err
    assert "other settings" in err and "max_gen_toks" in err and "--force" in err
    assert ev.ids == [] and RunStore(sweep_run).done_ids() == sorted(POINT_IDS)


@pytest.mark.slow
def test_killed_sweep_resumes_to_the_same_report(
    sweep_run, tiny_pair, tmp_path, monkeypatch, capsys
):
    run_dir = tmp_path / "run"
    flags = [*_grid_flags(*tiny_pair), *EVAL_FLAGS, "--out", str(run_dir)]
    real_evaluate = evaluation.evaluate
    monkeypatch.setattr(evaluation, "evaluate", Counter(real_evaluate, fail_after=1))
    assert main(["sweep", *flags]) == 130  # Ctrl-C during the second point
    assert "rerun the same command to resume" in capsys.readouterr().err
    store = RunStore(run_dir)
    assert store.done_ids() == ["wise-ft_a0.000"]
    first = {p.name: p.stat() for p in store.point_dir("wise-ft_a0.000").iterdir()}

    ev, mg = Counter(real_evaluate), Counter(point_mod.merge_point)
    monkeypatch.setattr(evaluation, "evaluate", ev)
    monkeypatch.setattr(point_mod, "merge_point", mg)
    assert main(["sweep", *flags]) == 0
    assert ev.ids == POINT_IDS[1:]
    assert "wise-ft_a0.000" not in mg.ids
    for p in store.point_dir("wise-ft_a0.000").iterdir():
        st = first[p.name]
        assert (p.stat().st_ino, p.stat().st_mtime_ns) == (st.st_ino, st.st_mtime_ns)
    fixture_report = RunStore(sweep_run).report_dir
    for name in ("leaderboard.csv", "leaderboard.json", "biasvar.csv", "biasvar.json"):
        assert (store.report_dir / name).read_bytes() == (fixture_report / name).read_bytes()


@pytest.mark.slow
def test_in_memory_sweep_matches_the_disk_sweep(sweep_run, tiny_pair, tmp_path):
    early, late = tiny_pair
    run_dir = tmp_path / "mem"
    flags = ["--early", str(early), "--late", str(late), "--alphas", "0.5,1", *EVAL_FLAGS]
    assert main(["sweep", *flags, "--in-memory", "--no-report", "--out", str(run_dir)]) == 0
    assert not (run_dir / "merged").exists()
    for pid in ("wise-ft_a0.500", "wise-ft_a1.000"):
        mem = RunStore(run_dir).point_dir(pid) / f"samples_{TASK}.jsonl"
        disk = RunStore(sweep_run).point_dir(pid) / f"samples_{TASK}.jsonl"
        assert mem.read_bytes() == disk.read_bytes(), pid


def test_cli_grid_from_a_recipes_dir(tmp_path, tiny_pair):
    from passk_plugin.recipes import wise_ft_grid, write_recipes

    early, late = tiny_pair
    written = wise_ft_grid(early, late, [0.0, 0.5])
    write_recipes(written, tmp_path / "rec")
    specs = _grid(_args(recipes=tmp_path / "rec", temperatures="0.7"))
    assert [s.id for s in specs] == ["wise-ft_a0.000", "wise-ft_a0.500", "late-T0.7"]
    assert specs[:2] == written  # the manifest's points, as they were built
    assert [s.alpha for s in specs] == [0.0, 0.5, None]
    assert specs[1].weights == (0.5, 0.5)
    assert specs[2].checkpoint == str(late.resolve())  # the late checkpoint of the recipes


def test_sweep_writes_the_recipes_into_the_run_dir(tmp_path, tiny_pair, lab):
    early, late = tiny_pair
    specs = _grid(_args(early=early, late=late, alphas="0:1:0.5"))
    assert [s.id for s in specs] == ["wise-ft_a0.000", "wise-ft_a0.500", "wise-ft_a1.000"]
    assert not (tmp_path / "run").exists()  # building a grid writes nothing
    run_sweep(tmp_path / "run", specs, EvalSettings(tasks=["t"]), report=False, progress=False)
    recipes = tmp_path / "run" / "recipes"
    assert sorted(p.name for p in recipes.iterdir()) == sorted(
        ["manifest.json", *(f"{s.id}.yaml" for s in specs)]
    )
    assert (recipes / "wise-ft_a0.500.yaml").read_text() == specs[1].to_yaml()


def test_merges_of_finished_points_are_cleared_on_rerun(tmp_path, lab):
    # killed after storing a point but before deleting its merged weights
    specs = [_merge_spec("a", 0.0)]
    run_sweep(tmp_path, specs, EvalSettings(tasks=["t"]), report=False, progress=False)
    RunStore(tmp_path).merged_dir("a").mkdir(parents=True)
    run_sweep(tmp_path, specs, EvalSettings(tasks=["t"]), report=False, progress=False)
    assert not (tmp_path / "merged").exists()


def test_moved_or_copied_run_dir_resumes_without_redoing_points(tmp_path, lab):
    """Checkpoints inside the run directory are stored relative to it; others stay absolute."""
    import shutil

    def grid(root: Path) -> list[GridPoint]:
        inside = str(root / "ckpt" / "early")
        return [
            GridPoint(id="a", method="wise-ft", alpha=0.5, checkpoints=(inside, "/outside/late"),
                      weights=(0.5, 0.5)),
            GridPoint(id="b", method="checkpoint", checkpoints=(inside,)),
        ]  # fmt: skip

    settings = EvalSettings(tasks=["t"], n=2)
    first = tmp_path / "first"
    run_sweep(first, grid(first), settings, report=False, progress=False)
    stored = json.loads((first / "sweep.json").read_text())["points"]
    assert stored["a"]["checkpoints"] == ["./ckpt/early", "/outside/late"]
    assert json.loads((first / "points" / "b" / "point.json").read_text())["checkpoints"] == [
        "./ckpt/early"
    ]
    copied = tmp_path / "copied"
    shutil.copytree(first, copied)
    moved = tmp_path / "moved"
    shutil.move(first, moved)
    for root in (moved, copied):
        lab.merged.clear()
        lab.evaluated.clear()
        results = run_sweep(root, grid(root), settings, report=False, progress=False)
        assert [r.status for r in results] == ["skipped", "skipped"]
        assert lab.merged == lab.evaluated == []
    from passk_plugin.report.collect import collect_run

    (rec,) = [r for r in collect_run(moved) if r.id == "b"]
    assert rec.point.checkpoints == (str(moved / "ckpt" / "early"),)


@pytest.mark.slow
def test_decoding_point_on_cpu_without_device(tmp_path, tiny_pair, shared_data, monkeypatch):
    """No --device, default model (hf-passk): the sweep picks the CPU when torch has no CUDA."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    run_dir = tmp_path / "run"
    argv = ["sweep", "--late", str(tiny_pair[1]), "--temperatures", "0.8", "--tasks", TASK,
            "--num-fewshot", "0", "--n", "2", "--limit", "1", "--max-gen-toks", "4",
            "--data-dir", str(shared_data), "--no-progress", "--no-report",
            "--out", str(run_dir)]  # fmt: skip
    assert main(argv) == 0
    results = json.loads((run_dir / "points" / "late-T0.8" / "results.json").read_text())
    assert "hf-passk" in str(results["config"]["model"])
    assert results["configs"][TASK]["generation_kwargs"]["temperature"] == 0.8
