"""Trajectory and early × late report: rows, standard errors, peak lines, plots."""

from __future__ import annotations

import csv
import math
import statistics
from pathlib import Path

import pytest

from passk_plugin.grid import GridPoint, checkpoint_points
from passk_plugin.report import build_report, collect_run
from passk_plugin.report import trajectory as traj
from passk_plugin.sweep_store import RunStore, dumps_json

from .conftest import TASK, N, results_doc, samples_lines

# step -> per-problem correct counts out of N: diverse early (every problem solved now and
# then), collapsed late (each problem always or never solved).
TRAJECTORY = {
    100: [1, 1, 2, 1, 2, 1, 1, 2, 1, 1],
    200: [2, 0, 3, 0, 4, 1, 0, 3, 2, 0],
    300: [8, 0, 8, 0, 8, 0, 0, 8, 0, 0],
    400: [8, 0, 8, 0, 8, 0, 8, 8, 0, 0],
}
# late step -> counts of WiSE-FT α = 0.5 of checkpoint-100 with that checkpoint
WISE = {300: [6, 1, 7, 1, 7, 1, 2, 7, 1, 1], 400: [6, 1, 7, 1, 7, 1, 7, 7, 2, 1]}


def _store(store: RunStore, point: GridPoint, c: list[int]) -> None:
    files = {
        "point.json": dumps_json(point.to_stored(store.root)),
        "results.json": dumps_json(results_doc({TASK: c}, 1.0)),
        f"samples_{TASK}.jsonl": samples_lines(c),
    }
    store.write_point(point.id, files, {"id": point.id})


@pytest.fixture
def stepped_run(tmp_path) -> Path:
    store = RunStore(tmp_path / "run")
    paths = {s: str(tmp_path / "train" / f"checkpoint-{s}") for s in TRAJECTORY}
    for point, c in zip(checkpoint_points(paths.values()), TRAJECTORY.values(), strict=True):
        _store(store, point, c)
    for step, c in WISE.items():
        point = GridPoint(
            id=f"ckpt_checkpoint-{step}_wise-ft_a0.500",
            method="wise-ft",
            alpha=0.5,
            weights=(0.5, 0.5),
            checkpoints=(paths[100], paths[step]),
            step=step,
        )
        _store(store, point, c)
    return store.root


def _brute(c: list[int], k: int) -> tuple[float, float]:
    """Mean and standard error over problems of 1 − C(n−c, k)/C(n, k), with math.comb."""
    per = [1 - math.comb(N - ci, k) / math.comb(N, k) for ci in c]
    return statistics.fmean(per), statistics.stdev(per) / math.sqrt(len(per))


def test_rows_peaks_and_standard_errors(stepped_run):
    rows = traj.step_rows(collect_run(stepped_run), TASK)
    plain = traj.trajectory(rows)
    assert [r.step for r in plain] == list(TRAJECTORY)
    for r, c in zip(plain, TRAJECTORY.values(), strict=True):
        assert r.k == N
        assert (r.pass1, r.pass1_se) == pytest.approx(_brute(c, 1), abs=1e-12)
        assert (r.passk, r.passk_se) == pytest.approx(_brute(c, N), abs=1e-12)
        assert r.rho0_share == sum(x == 0 for x in c) / len(c)
        assert r.rho1_share == sum(x == N for x in c) / len(c)
    lines = traj.peak_lines(rows)
    assert lines[0].startswith(f"Pass@{N} peaks at step 100 (1.000 ± 0.000)")
    assert lines[1].startswith("Pass@1 peaks at step 400 (0.500 ± ")


def test_early_late_curves(stepped_run):
    records = collect_run(stepped_run)
    curves = traj.early_late_curves(traj.step_rows(records, TASK), records)
    assert {k: [r.step for r in v] for k, v in curves.items()} == {
        "wise-ft α=0.5": [300, 400],
        "α=1 (checkpoints)": [100, 300, 400],  # the early checkpoint and the late ones
    }
    assert curves["wise-ft α=0.5"][0].pass1 == pytest.approx(_brute(WISE[300], 1)[0])


def test_report_writes_the_trajectory(stepped_run):
    written = build_report(stepped_run)
    for name in (f"trajectory_{TASK}.png", f"early_late_{TASK}.png"):
        assert written[name].read_bytes().startswith(b"\x89PNG"), name
    rows = list(csv.DictReader(written["trajectory.csv"].open()))
    assert [(r["id"], r["step"]) for r in rows if r["method"] == "checkpoint"] == [
        (f"ckpt_checkpoint-{s}", str(s)) for s in TRAJECTORY
    ]
    board = written["leaderboard.md"].read_text()
    assert f"Pass@{N} peaks at step 100" in board and "Pass@1 peaks at step 400" in board
    assert "standard error over problems" in board
    html = written["leaderboard.html"].read_text()
    assert "Training trajectory" in html and "Pass@1 peaks at step 400" in html
    assert "standard error over problems" in written["trajectory.md"].read_text()


def test_no_section_without_steps(synthetic_run):
    written = build_report(synthetic_run)
    assert "trajectory.csv" not in written
    assert "Training trajectory" not in written["leaderboard.md"].read_text()


def test_other_decoding_settings_are_not_drawn_as_temperatures(tmp_path):
    from passk_plugin.grid import Sampling, decoding_points
    from passk_plugin.report import plots, points

    store = RunStore(tmp_path / "run")
    settings = [Sampling(temperature=1.0), Sampling(top_p=0.8), Sampling(min_p=0.05)]
    for point in decoding_points("/late", settings):
        _store(store, point, TRAJECTORY[400])
    records = collect_run(store.root)
    assert all(r.temperature == 1.0 for r in records)  # the run's temperature, stored
    assert [r.id for r in points.temperature_points(records, TASK)] == ["late-T1"]
    assert plots.pass1_vs_passk(records, TASK).startswith(b"\x89PNG")


def test_paired_references_are_the_checkpoints_themselves(stepped_run):
    from passk_plugin.report import paired, points

    records = collect_run(stepped_run)
    assert points.late_point(records).id == "ckpt_checkpoint-400"  # the latest late one
    assert points.early_point(records).id == "ckpt_checkpoint-100"
    rows = paired.paired_rows(records)
    refs = {(r.reference_role, r.reference) for r in rows}
    assert ("late", "ckpt_checkpoint-400") in refs and ("early", "ckpt_checkpoint-100") in refs
