from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from pathlib import Path

from passk_plugin.quiet import LOG_FILE_ENV, OncePerMessage, quiet_output

REPO = Path(__file__).resolve().parents[1]

# A sweep's shape: passk's own bar around per-point upstream work that warns and shows bars.
SWEEP_LIKE = """
import logging, sys, warnings
from passk_plugin.quiet import quiet_output
with quiet_output():
    from tqdm import tqdm
    outer = tqdm(total=3, desc="sweep", disable=False, file=sys.stderr)
    for point in range(3):
        logging.getLogger("lm_eval.evaluator").warning("generation_kwargs specified through cli")
        logging.getLogger("lm_eval.evaluator").warning("point %d started", point)
        warnings.warn("stored in an older shape", UserWarning)
        for _ in tqdm(range(5), desc="building contexts"):  # leaves `disable` to tqdm
            pass
        bar = tqdm(total=5, desc="Running generate_until requests", disable=False)
        bar.update(5)
        bar.close()
        outer.update()
    outer.close()
"""


def _run(env: dict[str, str]) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in LOG_FILE_ENV}
    result = subprocess.run(
        [sys.executable, "-c", SWEEP_LIKE],
        capture_output=True,
        text=True,
        env={**clean, "PYTHONPATH": str(REPO), **env},
        timeout=120,
        check=True,
    )
    return result.stderr


def test_a_logged_sweep_has_no_escape_codes_and_no_repeated_warnings():
    log = _run({})
    assert "\x1b[" not in log  # no cursor movement from nested bars
    assert log.count("generation_kwargs specified through cli") == 1
    assert all(f"point {i} started" in log for i in range(3))  # distinct messages all kept
    assert log.count("warning: stored in an older shape\n") == 1 and "warnings.warn" not in log
    assert "building contexts" not in log  # upstream bars that defer to tqdm: off in a log
    assert "sweep" in log and "Running generate_until requests" in log


def test_the_users_settings_win():
    log = _run({"TQDM_DISABLE": ""})  # tqdm reads any non-empty value as true
    assert "building contexts" in log


def test_once_per_message_and_the_environment_is_restored(monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    monkeypatch.setenv("TQDM_MININTERVAL", "5")
    stream = io.StringIO()  # not a terminal
    with quiet_output(stream):
        assert os.environ["TQDM_DISABLE"] == "1" and os.environ["TQDM_MININTERVAL"] == "5"
    assert "TQDM_DISABLE" not in os.environ and os.environ["TQDM_MININTERVAL"] == "5"
    handler = logging.StreamHandler(stream)
    handler.addFilter(OncePerMessage())
    logger = logging.getLogger("passk.test.once")
    logger.addHandler(handler)
    try:
        for _ in range(4):
            logger.warning("same")
        logger.warning("other")
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue().splitlines() == ["same", "other"]
