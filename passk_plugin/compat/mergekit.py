"""mergekit internals used by passk's merges: the planned task graph and the loader cache.

An in-memory merge runs mergekit's own plan (``MergePlanner.plan_to_disk``, the plan
``run_merge`` executes; ``plan_in_memory`` fails to build its tasks in mergekit 0.1.5) on its
own executor, answering every tensor load from tensors already in memory, so the result is
exactly what mergekit writes. That needs ``mergekit.merge._model_out_config``, the fields of
the ``LoadTensor``/``SaveTensor`` tasks and the ``Executor``'s ``cached_values``. mergekit also
keeps open shard files in a process-wide ``LoaderCache`` singleton, flushed after each merge.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mergekit.architecture import get_architecture_info
from mergekit.common import dtype_from_name
from mergekit.graph import Executor, TaskHandle, TaskUniverse
from mergekit.io.tasks import LoaderCache, LoadTensor, SaveTensor
from mergekit.options import MergeOptions
from mergekit.plan import MergePlanner

from passk_plugin.compat import SUPPORTED as SUPPORTED_VERSIONS
from passk_plugin.compat import installed_version, require

if TYPE_CHECKING:
    import torch
    from mergekit.config import MergeConfiguration

SUPPORTED = SUPPORTED_VERSIONS["mergekit"]


def _fields(model: Any, *names: str) -> bool:
    return all(name in model.model_fields for name in names)


def _merge_module() -> Any:
    return importlib.import_module("mergekit.merge")


def check_supported() -> None:
    """Raise UnsupportedVersion unless the installed mergekit has what passk uses."""
    require(
        "mergekit",
        installed_version("mergekit"),
        SUPPORTED,
        [
            ("merge._model_out_config", lambda: callable(_merge_module()._model_out_config)),
            ("MergePlanner.plan_to_disk", lambda: MergePlanner.plan_to_disk),
            ("LoaderCache.setup/flush_all", lambda: LoaderCache.setup and LoaderCache.flush_all),
            (
                "LoadTensor fields model/tensor/dtype/aliases/tied_names",
                lambda: _fields(LoadTensor, "model", "tensor", "dtype", "aliases", "tied_names"),
            ),
            (
                "SaveTensor fields tensor_name/tensor_task/optional/dtype",
                lambda: _fields(SaveTensor, "tensor_name", "tensor_task", "optional", "dtype"),
            ),
            (
                "Executor(cached_values=...)",
                lambda: "cached_values" in inspect.signature(Executor.__init__).parameters,
            ),
            (
                "TaskUniverse.add_task/tasks",
                lambda: TaskUniverse.add_task and TaskUniverse().tasks == [],
            ),
        ],
    )


check_supported()


@dataclass(frozen=True)
class TensorRead:
    """One tensor a merge reads from an input checkpoint."""

    checkpoint: str  # the checkpoint's path, as the recipe names it
    names: tuple[str, ...]  # its name, then the aliases and tied names it may be stored under
    dtype: torch.dtype | None  # the dtype the merge wants it in (None: as stored)
    from_disk: Callable[[], torch.Tensor | None]  # mergekit's own read, conversions included


def _tensor_read(task: LoadTensor) -> TensorRead:
    return TensorRead(
        checkpoint=str(task.model.model.path),
        names=(task.tensor, *(task.aliases or ()), *(task.tied_names or ())),
        dtype=dtype_from_name(task.dtype) if task.dtype else None,
        from_disk=task.execute,
    )


def merged_tensors(
    config: MergeConfiguration,
    *,
    math_device: str,
    storage_device: torch.device,
    read: Callable[[TensorRead], torch.Tensor | None],
) -> dict[str, torch.Tensor]:
    """The tensors mergekit would write for ``config``, every input tensor taken from ``read``.

    Runs mergekit's disk plan without its writer: only the tensors are computed, on
    ``math_device``, kept on ``storage_device``, and converted to the dtype mergekit saves.
    """
    options = MergeOptions(quiet=True, device=math_device)
    arch_info = get_architecture_info(config, options)
    LoaderCache().setup(options)
    out_config = _merge_module()._model_out_config(config, arch_info)
    planner = MergePlanner(config, arch_info, options=options, out_model_config=out_config)
    saves = [t for t in planner.plan_to_disk(out_path="<memory>") if isinstance(t, SaveTensor)]
    universe = TaskUniverse()
    targets = [universe.add_task(save.tensor_task) for save in saves]
    # Every tensor load is answered by `read`; the executor never reaches mergekit's loaders.
    cached = {
        TaskHandle(universe, index): read(_tensor_read(task))
        for index, task in enumerate(universe.tasks)
        if isinstance(task, LoadTensor)
    }
    executor = Executor(
        targets, math_device=options.device, storage_device=storage_device, cached_values=cached
    )
    values = dict(executor.run(quiet=True))
    state: dict[str, torch.Tensor] = {}
    for save in saves:
        tensor = values[save.tensor_task]
        if tensor is None:
            if not save.optional:
                raise RuntimeError(f"mergekit produced no value for {save.tensor_name}")
            continue
        if save.dtype:  # SaveTensor's conversion before writing
            tensor = tensor.to(dtype=dtype_from_name(save.dtype))
        state[save.tensor_name] = tensor
    return state


def flush_loader_cache() -> None:
    """Close the shard files mergekit keeps open process-wide (the next merge may read new ones)."""
    LoaderCache().flush_all()
