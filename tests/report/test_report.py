from __future__ import annotations

import json

import pytest

from passk_plugin.cli import main
from passk_plugin.outputs import MARKER_FILE
from passk_plugin.report import build_report
from passk_plugin.sweep_store import RunStore

from .conftest import TASK

TABLES = [
    "leaderboard.md",
    "leaderboard.csv",
    "leaderboard.json",
    "leaderboard.html",
    "biasvar.md",
    "biasvar.csv",
    "biasvar.json",
    "paired.md",
    "paired.csv",
    "paired.json",
]
PLOTS = [
    f"{p}_{TASK}.png"
    for p in (
        "passk_vs_k",
        "pass1_vs_passk",
        "metric_vs_alpha",
        "rho_hist",
        "biasvar",
        "forest",
        "diversity",
    )
]


def test_build_report_writes_everything_into_run_dir_report(synthetic_run):
    written = build_report(synthetic_run)
    report = RunStore(synthetic_run).report_dir
    assert sorted(written) == sorted(TABLES + PLOTS)
    for name in TABLES + PLOTS:
        assert (report / name).stat().st_size > 0
    hidden = [p.name for p in report.iterdir() if p.name.startswith(".")]
    assert hidden == [MARKER_FILE]  # passk's output marker, no temp files left
    html = (report / "leaderboard.html").read_text()
    assert html.count("data:image/png;base64,") == len(PLOTS)
    assert "Bias–variance view" in html and "<details" in html


def test_report_is_rebuilt_identically(synthetic_run, tmp_path):
    build_report(synthetic_run)
    build_report(synthetic_run, out=tmp_path / "again")
    report = RunStore(synthetic_run).report_dir
    for name in TABLES[:3] + TABLES[4:]:
        assert (report / name).read_bytes() == (tmp_path / "again" / name).read_bytes()


def test_bad_input(tmp_path, synthetic_run):
    with pytest.raises(ValueError, match="not both or neither"):
        build_report()
    with pytest.raises(ValueError, match="not both or neither"):
        build_report(synthetic_run, results_dirs=[tmp_path])
    with pytest.raises(ValueError, match="needs --out"):
        build_report(results_dirs=[tmp_path])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no finished points"):
        build_report(tmp_path / "empty")
    with pytest.raises(FileNotFoundError):
        build_report(tmp_path / "missing")


def test_cli(synthetic_run, tmp_path, capsys):
    assert main(["report", str(synthetic_run), "--out", str(tmp_path / "r"), "--no-plots"]) == 0
    assert "wrote 10 files" in capsys.readouterr().out
    doc = json.loads((tmp_path / "r" / "leaderboard.json").read_text())
    assert len(doc["rows"]) == 5
    assert main(["report", str(tmp_path / "nothing-here")]) == 2
    assert "run directory not found" in capsys.readouterr().err


def test_corrupt_points_are_left_out_and_listed(synthetic_run, tmp_path, capsys):
    points = RunStore(synthetic_run).points_root
    (points / "late-T1" / "results.json").write_text('{"results": {\n  "gsm8k_passk": ')
    (points / "wise-ft_a0.500" / "point.json").write_bytes(b'{"id": "caf\xe9"}\n')
    assert main(["report", str(synthetic_run), "--out", str(tmp_path / "r"), "--no-plots"]) == 0
    captured = capsys.readouterr()
    doc = json.loads((tmp_path / "r" / "leaderboard.json").read_text())
    assert len(doc["rows"]) == 3
    assert "left out 2 unreadable" in captured.err and "Traceback" not in captured.err
    assert f"{points / 'late-T1' / 'results.json'}:2: corrupt" in captured.err
    assert f"{points / 'wise-ft_a0.500' / 'point.json'}:1: not UTF-8" in captured.err
    skipped: list[str] = []
    build_report(synthetic_run, out=tmp_path / "r", with_plots=False, skipped=skipped)
    assert [s.split(" skipped")[0] for s in skipped] == ["point late-T1", "point wise-ft_a0.500"]


def test_report_directory_rule(synthetic_run, tmp_path, capsys):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "notes.txt").write_text("mine")
    file_out = tmp_path / "report.html"
    file_out.write_text("keep")
    for out, expected in [
        (notes, "--overwrite"),
        (file_out, "is a file, not a directory"),
        (synthetic_run, "holds the input"),
    ]:
        assert main(["report", str(synthetic_run), "--out", str(out), "--no-plots"]) == 2
        err = capsys.readouterr().err
        assert str(out) in err and expected in err and "Traceback" not in err
    assert file_out.read_text() == "keep" and [p.name for p in notes.iterdir()] == ["notes.txt"]
    assert (
        main(["report", str(synthetic_run), "--out", str(notes), "--no-plots", "--overwrite"]) == 0
    )
    assert (notes / "notes.txt").read_text() == "mine" and (notes / "leaderboard.md").is_file()


def test_page_reads_answer_first_and_bias_variance_last(synthetic_run):
    from passk_plugin.report import collect_run, headline_text

    build_report(synthetic_run)
    report = RunStore(synthetic_run).report_dir
    html = (report / "leaderboard.html").read_text()
    marks = [
        'id="headline"',
        f'alt="{TASK}: Pass@1 against Pass@k_max"',
        "Against the late checkpoint (paired)",
        'id="board"',
        f'alt="{TASK}: Pass@k against k"',
        '<details id="biasvar">',
    ]
    positions = [html.index(m) for m in marks]
    assert positions == sorted(positions)
    assert "<details open" not in html  # the bias-variance table starts collapsed
    md = (report / "leaderboard.md").read_text()
    first = headline_text(collect_run(synthetic_run), width=10**6).splitlines()[0]
    assert md.index(first) < md.index(f"## {TASK}")
    assert md.index(f"(pass1_vs_passk_{TASK}.png)") < md.index(f"## {TASK}")
