"""Importing passk_plugin.backends registers both backends without importing vLLM."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_vllm_passk_is_registered_without_importing_vllm():
    pytest.importorskip("vllm")
    code = (
        "import sys\n"
        "import passk_plugin.backends\n"
        "from lm_eval.api.registry import get_model\n"
        "assert 'vllm' not in sys.modules, 'vllm imported eagerly'\n"
        "assert get_model('hf-passk').__name__ == 'HFPassKLM'\n"
        "cls = get_model('vllm-passk')\n"
        "assert cls.__module__ == 'passk_plugin.backends.vllm' and 'vllm' in sys.modules\n"
        "assert get_model('vllm-passk') is cls\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
