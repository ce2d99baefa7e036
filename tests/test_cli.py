from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from passk_plugin.cli import main

REPO = Path(__file__).resolve().parents[1]


def _passk(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "import sys; from passk_plugin.cli import main; sys.exit(main())"]
        + list(args),
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        timeout=120,
    )


def test_help_speaks_to_users():
    result = _passk("--help")
    assert result.returncode == 0
    text = result.stdout
    for command in ("demo", "sweep", "merge", "report", "score"):
        assert command in text
    assert "passk demo" in text and "passk COMMAND --help" in text
    assert "Traceback" not in result.stderr


def test_an_unknown_command_is_one_clear_line(capsys):
    assert main(["mrege"]) == 2
    err = capsys.readouterr().err
    assert "mrege" in err and "merge" in err and "Traceback" not in err


@pytest.fixture
def bad_recipe(tmp_path) -> Path:
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("merge_method: linear\nmodels: [\n")
    return recipe


def test_bad_input_exits_without_traceback(bad_recipe, tmp_path):
    result = _passk("merge", str(bad_recipe), str(tmp_path / "out"))
    assert result.returncode == 2
    assert f"passk merge: error: {bad_recipe}:" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) <= 2


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--debug"], {}),
        ([], {"PASSK_DEBUG": "1"}),
        (["AFTER"], {}),
    ],
)
def test_debug_shows_the_traceback(bad_recipe, tmp_path, args, env):
    command = ["merge", str(bad_recipe), str(tmp_path / "out")]
    if args == ["AFTER"]:
        command, args = [*command, "--debug"], []
    result = _passk(*args, *command, env=env)
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_unexpected_failures_say_how_to_see_more(monkeypatch, capsys):
    import passk_plugin.cli.tasks_dir as tasks_dir

    def broken(args):
        raise RuntimeError("something deep\nwith detail")

    monkeypatch.setattr(tasks_dir, "run", broken)
    assert main(["tasks-dir"]) == 1
    err = capsys.readouterr().err
    assert "RuntimeError: something deep" in err and "--debug" in err
    assert len(err.strip().splitlines()) == 2
