from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import pytest

from passk_plugin import sweep
from passk_plugin.cli import main
from passk_plugin.cli import sweep as sweep_cli
from passk_plugin.sweep import (
    EvalSettings,
    LocalExecutor,
    PointSpec,
    RunOptions,
    SweepContext,
    get_executor,
    lm_eval_kwargs,
    point_gen_kwargs,
    reconcile_settings,
    run_point,
    run_sweep,
    temperature_points,
)
from passk_plugin.sweep_store import RunStore

# ---------------------------------------------------------------------------- unit tests


def _merge_spec(pid: str, alpha: float) -> PointSpec:
    return PointSpec(id=pid, method="wise-ft", alpha=alpha, recipe=f"/recipes/{pid}.yaml")


def _base_spec(t: float) -> PointSpec:
    return PointSpec(id=f"late-T{t:g}", method="temperature", temperature=t, checkpoint="/late")


class FakeLab:
    """Stands in for mergekit and lm_eval: records calls, writes a merged dir, fakes results."""

    def __init__(self, fail_on: str | None = None):
        self.merged: list[str] = []
        self.evaluated: list[str] = []
        self.fail_on = fail_on

    def merge_point(self, ctx: SweepContext, spec: PointSpec) -> Path:
        self.merged.append(spec.id)
        out = RunStore(ctx.run_dir).merged_dir(spec.id)
        out.mkdir(parents=True, exist_ok=True)
        (out / "model.safetensors").write_bytes(b"weights")
        return out

    def evaluate(self, ctx: SweepContext, spec: PointSpec, model_ref) -> dict:
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
    fake = FakeLab()
    monkeypatch.setattr(sweep, "merge_point", fake.merge_point)
    monkeypatch.setattr(sweep, "evaluate", fake.evaluate)
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
    with pytest.raises(ValueError, match="exactly one of recipe or checkpoint"):
        PointSpec(id="p", method="wise-ft")
    with pytest.raises(ValueError, match="bad point id"):
        PointSpec(id="../p", method="temperature", checkpoint="/x")


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
        settings=EvalSettings(tasks=["t"], model_args={"dtype": "float32"}, seed=7, limit=3),
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


def test_task_metadata():
    assert sweep.task_metadata(EvalSettings(n=8, k="1,8")) == {"n": 8, "k": "1,8"}
    assert sweep.task_metadata(EvalSettings()) == {}


def test_temperature_points(tmp_path):
    pts = temperature_points(tmp_path, [0.5, 1.0])
    assert [p.id for p in pts] == ["late-T0.5", "late-T1"]
    assert all(p.checkpoint == str(tmp_path.resolve()) and not p.needs_merge for p in pts)
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
    assert json.loads((pdir / "point.json").read_text()) == spec.model_dump(mode="json")
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
    moved = PointSpec(id="a", method="wise-ft", alpha=0.0, recipe="/elsewhere.yaml")
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
    with pytest.raises(ValueError, match="unknown executor"):
        get_executor("nope")
    assert isinstance(get_executor("local", progress=False), LocalExecutor)


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


def test_cli_grid_errors(tmp_path):
    with pytest.raises(ValueError, match="nothing to run"):
        sweep_cli.grid_from_args(_args(), tmp_path)
    with pytest.raises(ValueError, match="both --early and --late"):
        sweep_cli.grid_from_args(_args(early="/x"), tmp_path)
    with pytest.raises(ValueError, match="give --late"):
        sweep_cli.grid_from_args(_args(temperatures="0.5,1"), tmp_path)
    with pytest.raises(ValueError, match="drop --early"):
        sweep_cli.grid_from_args(_args(recipes="/r", alphas="0,1"), tmp_path)


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
                                   "rho_hist", "biasvar")),
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


class Counter:
    """Wraps sweep.evaluate / sweep.merge_point to record the ids they ran on."""

    def __init__(self, fn, fail_after: int | None = None):
        self.fn, self.ids, self.fail_after = fn, [], fail_after

    def __call__(self, ctx, spec, *args):
        if self.fail_after is not None and len(self.ids) >= self.fail_after:
            raise KeyboardInterrupt  # as if Ctrl-C arrived during this point
        self.ids.append(spec.id)
        return self.fn(ctx, spec, *args)


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
    # pass@1,2,4 and maj@2,4 with their stderrs, for each point
    assert checked == len(POINT_IDS) * 10
    assert rows["late-T0.5"]["temperature"] == "0.5" and rows["wise-ft_a0.500"]["alpha"] == "0.5"


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
    ev, mg = Counter(sweep.evaluate), Counter(sweep.merge_point)
    monkeypatch.setattr(sweep, "evaluate", ev)
    monkeypatch.setattr(sweep, "merge_point", mg)
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
    real_evaluate = sweep.evaluate
    monkeypatch.setattr(sweep, "evaluate", Counter(real_evaluate, fail_after=1))
    assert main(["sweep", *flags]) == 130  # Ctrl-C during the second point
    assert "rerun the same command to resume" in capsys.readouterr().err
    store = RunStore(run_dir)
    assert store.done_ids() == ["wise-ft_a0.000"]
    first = {p.name: p.stat() for p in store.point_dir("wise-ft_a0.000").iterdir()}

    ev, mg = Counter(real_evaluate), Counter(sweep.merge_point)
    monkeypatch.setattr(sweep, "evaluate", ev)
    monkeypatch.setattr(sweep, "merge_point", mg)
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
    write_recipes(wise_ft_grid(early, late, [0.0, 0.5]), tmp_path / "rec")
    specs = sweep_cli.grid_from_args(_args(recipes=tmp_path / "rec", temperatures="0.7"), tmp_path)
    assert [s.id for s in specs] == ["wise-ft_a0.000", "wise-ft_a0.500", "late-T0.7"]
    assert [s.alpha for s in specs] == [0.0, 0.5, None]
    assert specs[1].recipe == str((tmp_path / "rec" / "wise-ft_a0.500.yaml").resolve())
    assert specs[1].parameters["weights"] == [0.5, 0.5]
    assert specs[2].checkpoint == str(late.resolve())  # the late checkpoint of the recipes


def test_cli_writes_the_recipes_into_the_run_dir(tmp_path, tiny_pair):
    early, late = tiny_pair
    specs = sweep_cli.grid_from_args(_args(early=early, late=late, alphas="0:1:0.5"), tmp_path)
    assert [s.id for s in specs] == ["wise-ft_a0.000", "wise-ft_a0.500", "wise-ft_a1.000"]
    assert (tmp_path / "recipes" / "manifest.json").is_file()
    assert all(Path(s.recipe).parent == (tmp_path / "recipes").resolve() for s in specs)


def test_merges_of_finished_points_are_cleared_on_rerun(tmp_path, lab):
    # killed after storing a point but before deleting its merged weights
    specs = [_merge_spec("a", 0.0)]
    run_sweep(tmp_path, specs, EvalSettings(tasks=["t"]), report=False, progress=False)
    RunStore(tmp_path).merged_dir("a").mkdir(parents=True)
    run_sweep(tmp_path, specs, EvalSettings(tasks=["t"]), report=False, progress=False)
    assert not (tmp_path / "merged").exists()
