"""lm_eval models that sample n completions per prompt.

Importing this package registers them with lm_eval: ``hf-passk`` always, and a vLLM backend
only where vLLM is installed (importing vLLM is slow and pulls in its own torch build).
"""

from __future__ import annotations

import importlib
import importlib.util

from passk_plugin.backends import hf  # noqa: F401  (registers "hf-passk")

if importlib.util.find_spec("vllm") is not None and importlib.util.find_spec(
    "passk_plugin.backends.vllm"
):
    importlib.import_module("passk_plugin.backends.vllm")
