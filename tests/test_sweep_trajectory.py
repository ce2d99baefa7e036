"""Trajectories, early × late grids and decoding baselines in `passk sweep`."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from sweep_counting import Counter

from passk_plugin.cli import main
from passk_plugin.errors import UsageError
from passk_plugin.sweep import evaluation
from passk_plugin.sweep import point as point_mod
from passk_plugin.sweep.grids import GridRequest, build_points, early_late_grid
from passk_plugin.sweep_store import RunStore

TASK = "gsm8k_passk"
EVAL_FLAGS = [
    "--tasks", TASK,
    "--num-fewshot", "1",
    "--n", "2",
    "--limit", "2",
    "--temperature", "1.0",
    "--max-gen-toks", "4",
    "--batch-size", "8",
    "--device", "cpu",
    "--no-progress",
]  # fmt: skip
STEPS = (10, 20, 300)  # 300 after 20: step order, not name order


@pytest.fixture(scope="module")
def training_run(tmp_path_factory, tiny_tokenizer) -> Path:
    """A training run's output directory: checkpoint-10, -20, -300 (seeds 1, 2, 3) and a log."""
    from passk_plugin.demo.tiny import build_tiny_llama

    root = tmp_path_factory.mktemp("train") / "run"
    for seed, step in enumerate(STEPS, start=1):
        build_tiny_llama(root / f"checkpoint-{step}", tokenizer=tiny_tokenizer, seed=seed)
    (root / "logs").mkdir()  # not a checkpoint: ignored
    return root


def _ckpt(run: Path, step: int) -> str:
    return str(run / f"checkpoint-{step}")


# ------------------------------------------------------------------------ building the grid


def test_run_directory_stands_for_its_checkpoints_in_step_order(training_run):
    points = build_points(GridRequest(checkpoints=(str(training_run),)))
    assert [p.id for p in points] == [f"ckpt_checkpoint-{s}" for s in STEPS]
    assert [p.step for p in points] == list(STEPS)
    assert all(p.method == "checkpoint" and not p.needs_merge for p in points)


def test_step_from_trainer_state(training_run, tmp_path):
    import shutil

    ckpt = tmp_path / "final"
    shutil.copytree(_ckpt(training_run, 20), ckpt)
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": 777}))
    (point,) = build_points(GridRequest(checkpoints=(str(ckpt),)))
    assert point.step == 777 and point.id == "ckpt_final"


def test_early_late_grid_with_trajectory_evaluates_each_model_once(training_run):
    early, l1, l2 = (_ckpt(training_run, s) for s in STEPS)
    request = GridRequest(
        checkpoints=(str(training_run),),
        early=early,
        late=(l1, l2),
        alphas="0,0.5,1",
        temperatures="1",
        decoding="top_p=0.8;min_p=0.05;typical_p=0.9",
    )
    points = build_points(request)
    ids = [p.id for p in points]
    assert ids == [
        "ckpt_checkpoint-10",
        "ckpt_checkpoint-20",
        "ckpt_checkpoint-300",
        "ckpt_checkpoint-20_wise-ft_a0.500",
        "ckpt_checkpoint-300_wise-ft_a0.500",
        "late-T1",
        "late-top_p=0.8",
        "late-min_p=0.05",
        "late-typical_p=0.9",
    ]
    assert len({p.model_key() for p in points}) == len(points)
    merges = {p.id: p for p in points if p.needs_merge}
    assert {(p.step, p.alpha) for p in merges.values()} == {(20, 0.5), (300, 0.5)}
    assert all(p.checkpoints[0] == early for p in merges.values())
    decoding = [p for p in points if p.method == "decoding"]
    assert all(p.checkpoints == (l2,) and p.step == 300 for p in decoding)
    assert [d.gen_kwargs() for d in decoding[1:]] == [
        {"top_p": 0.8},
        {"min_p": 0.05},
        {"typical_p": 0.9},
    ]


def test_early_late_grid_reads_each_checkpoint_once(training_run, monkeypatch):
    from passk_plugin import checkpoints

    read: list[str] = []
    inspect = checkpoints.inspect_checkpoint

    def counted(path):
        read.append(str(Path(path).resolve()))
        return inspect(path)

    monkeypatch.setattr(checkpoints, "inspect_checkpoint", counted)
    refs = [str(Path(_ckpt(training_run, s)).resolve()) for s in STEPS]
    points = early_late_grid(refs[0], refs[1:], [0.0, 0.5, 1.0])
    assert sorted(read) == sorted(refs)  # not the early one again for each late one
    assert len(points) == 5  # early, two lates and one α = 0.5 merge per late
    with pytest.raises(ValueError, match=r"alpha=1\.5 is outside \[0, 1\]"):
        early_late_grid(refs[0], refs[1:], [0.5, 1.5])  # the method's checks on values stay


def test_decoding_settings_combine_keys_and_follow_the_trajectory(training_run):
    points = build_points(
        GridRequest(checkpoints=(str(training_run),), decoding="top_p=0.9,temperature=0.7")
    )
    (d,) = [p for p in points if p.method == "decoding"]
    assert d.id == "late-temperature=0.7_top_p=0.9"
    assert d.checkpoints == (_ckpt(training_run, 300),)  # the trajectory's last checkpoint


@pytest.mark.parametrize(
    ("request_kwargs", "message"),
    [
        ({"checkpoints": ("{run}/logs",)}, "no checkpoint-<step> directories"),
        ({"checkpoints": ("{run}/missing",)}, "checkpoint not found"),
        ({"early": "{run}/checkpoint-20", "late": ("{run}/checkpoint-10", "{run}/checkpoint-300")},
         "is not after --early"),
        ({"early": "{run}/checkpoint-20", "late": ("{run}/checkpoint-10",)},
         "is not after --early"),
        ({"early": "{run}/checkpoint-10", "late": ("{wide}", "{run}/checkpoint-300")},
         "--early and --late: checkpoints cannot be merged"),
        ({"checkpoints": ("{run}", "{wide}")}, "--checkpoints: checkpoints cannot be merged"),
        ({"checkpoints": ("{run}",), "decoding": "top_k=5"}, "key one of"),
        ({"checkpoints": ("{run}",), "decoding": "min_p=2"}, "must be in"),
        ({"decoding": "top_p=0.5"}, "give --late"),
    ],
)  # fmt: skip
def test_bad_grids_are_refused_in_one_line(training_run, wide_model, request_kwargs, message):
    def fill(v):
        if isinstance(v, tuple):
            return tuple(fill(x) for x in v)
        return v.format(run=training_run, wide=wide_model)

    with pytest.raises(UsageError, match=message) as err:
        build_points(GridRequest(**{k: fill(v) for k, v in request_kwargs.items()}))
    assert "\n" not in str(err.value)


def test_typical_p_is_refused_for_vllm_before_any_work(training_run, tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["sweep", "--checkpoints", str(training_run), "--decoding", "typical_p=0.9",
               "--model", "vllm-passk", "--tasks", TASK, "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and "typical_p" in err and "hf-passk" in err
    assert not out.exists()


# ------------------------------------------------------------------------ end-to-end runs


def _grid_flags(run: Path) -> list[str]:
    return ["--checkpoints", str(run), "--early", _ckpt(run, 10),
            "--late", _ckpt(run, 20), _ckpt(run, 300), "--alphas", "0,0.5,1"]  # fmt: skip


GRID_IDS = [
    "ckpt_checkpoint-10",
    "ckpt_checkpoint-20",
    "ckpt_checkpoint-300",
    "ckpt_checkpoint-20_wise-ft_a0.500",
    "ckpt_checkpoint-300_wise-ft_a0.500",
]


@pytest.fixture(scope="module")
def grid_run(tmp_path_factory, training_run, shared_data):
    """Trajectory + early × late grid, interrupted after 2 points, then resumed.

    Returns (run_dir, evaluations before the interruption, evaluations and merges of the
    rerun).
    """
    run_dir = tmp_path_factory.mktemp("traj") / "run"
    flags = [*_grid_flags(training_run), *EVAL_FLAGS, "--out", str(run_dir)]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PASSK_DATA_DIR", str(shared_data))
        real = evaluation.evaluate
        first = Counter(real, fail_after=2)
        mp.setattr(evaluation, "evaluate", first)
        assert main(["sweep", *flags]) == 130
        ev, mg = Counter(real), Counter(point_mod.merge_point)
        mp.setattr(evaluation, "evaluate", ev)
        mp.setattr(point_mod, "merge_point", mg)
        assert main(["sweep", *flags]) == 0
        again = Counter(real)
        mp.setattr(evaluation, "evaluate", again)
        assert main(["sweep", *flags]) == 0
    return run_dir, first.ids, ev.ids, mg.ids, again.ids


@pytest.mark.slow
def test_grid_evaluates_each_distinct_model_once_and_resumes(grid_run):
    run_dir, first, resumed, merged, again = grid_run
    assert first == GRID_IDS[:2]
    assert resumed == GRID_IDS[2:]  # nothing finished is redone
    assert sorted(first + resumed) == sorted(GRID_IDS)  # each distinct model once
    assert sorted(merged) == sorted(GRID_IDS[3:])  # only the interior α are merged
    assert again == []
    assert RunStore(run_dir).done_ids() == sorted(GRID_IDS)


@pytest.mark.slow
def test_trajectory_rows_carry_their_steps(grid_run):
    run_dir = grid_run[0]
    report = RunStore(run_dir).report_dir
    rows = {r["id"]: r for r in csv.DictReader((report / "leaderboard.csv").open())}
    assert sorted(rows) == sorted(GRID_IDS)
    steps = {r["id"]: r["step"] for r in csv.DictReader((report / "trajectory.csv").open())}
    assert steps == {pid: pid.split("-")[1].split("_")[0] for pid in GRID_IDS}
    for name in (f"trajectory_{TASK}.png", f"early_late_{TASK}.png"):
        assert (report / name).read_bytes().startswith(b"\x89PNG"), name
    board = (report / "leaderboard.md").read_text()
    assert "Pass@2 peaks at step " in board and "Pass@1 peaks at step " in board
    for pid in GRID_IDS:
        stored = json.loads((RunStore(run_dir).point_dir(pid) / "point.json").read_text())
        assert stored["step"] == int(pid.split("-")[1].split("_")[0])


@pytest.mark.slow
def test_in_memory_grid_matches_the_disk_grid(grid_run, training_run, shared_data, tmp_path,
                                              monkeypatch):  # fmt: skip
    monkeypatch.setenv("PASSK_DATA_DIR", str(shared_data))
    run = training_run
    mem = tmp_path / "mem"
    flags = ["--checkpoints", _ckpt(run, 10), "--early", _ckpt(run, 10),
             "--late", _ckpt(run, 20), _ckpt(run, 300), "--alphas", "0.5", *EVAL_FLAGS]  # fmt: skip
    assert main(["sweep", *flags, "--in-memory", "--no-report", "--out", str(mem)]) == 0
    assert not (mem / "merged").exists()
    ids = ["ckpt_checkpoint-10", *GRID_IDS[3:]]
    assert RunStore(mem).done_ids() == sorted(ids)
    for pid in ids:
        got = RunStore(mem).point_dir(pid) / f"samples_{TASK}.jsonl"
        want = RunStore(grid_run[0]).point_dir(pid) / f"samples_{TASK}.jsonl"
        assert got.read_bytes() == want.read_bytes(), pid
