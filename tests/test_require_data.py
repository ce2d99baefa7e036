"""The one rule for tests whose data lies outside the repository (tests/conftest.py)."""

from __future__ import annotations

import pytest
from conftest import data_missing


def test_missing_data_skips_by_default(monkeypatch):
    monkeypatch.delenv("PASSK_REQUIRE_DATA", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no data at /x"):
        data_missing("no data at /x")


def test_missing_data_fails_when_required(monkeypatch):
    monkeypatch.setenv("PASSK_REQUIRE_DATA", "1")
    with pytest.raises(pytest.fail.Exception, match="no data at /x; PASSK_REQUIRE_DATA=1"):
        data_missing("no data at /x")
