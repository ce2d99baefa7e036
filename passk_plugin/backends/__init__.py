"""lm_eval models that sample n completions per prompt.

Importing this package registers them with lm_eval: ``hf-passk`` always, and ``vllm-passk``
only where vLLM is installed. ``vllm-passk`` is registered by name and imported when lm_eval
first asks for it: importing vLLM takes several seconds and most runs never use it.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect

from lm_eval.api import registry

from passk_plugin.backends import hf  # noqa: F401  (registers "hf-passk")

VLLM_TARGET = "passk_plugin.backends.vllm:VLLMPassK"

if importlib.util.find_spec("vllm") is not None:
    models = getattr(registry, "model_registry", None)
    if models is not None and "target" in inspect.signature(models.register).parameters:
        models.register("vllm-passk", target=VLLM_TARGET)
    else:  # an lm_eval without lazy registration
        importlib.import_module("passk_plugin.backends.vllm")
