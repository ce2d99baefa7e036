from __future__ import annotations

import re

import pytest

from passk_plugin.compat import UnsupportedVersion, installed_version


def assert_guard_fires(check, library: str, distributions: tuple[str, ...], supported: str, what):
    """``check()`` raises UnsupportedVersion naming library, version, range and ``what``."""
    with pytest.raises(UnsupportedVersion) as err:
        check()
    message = str(err.value)
    version = installed_version(*distributions)
    assert version != "not installed"
    assert f"found {library} {version}" in message
    assert f"passk supports {library} {supported}" in message
    assert re.search(re.escape(what), message), message
    assert isinstance(err.value, ImportError)
