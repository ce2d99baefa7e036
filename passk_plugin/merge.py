"""Running mergekit on one recipe: to disk (resumable, atomic) or in memory (for sweeps).

Disk: :func:`merge_recipe` runs ``mergekit.merge.run_merge`` in-process (no CLI start-up),
writes into a temporary sibling of OUT and moves it into place with a completion marker that
records the recipe's hash and its files, so a finished output is skipped, a half-written or
stale one is redone, and nothing passk did not write is ever deleted.

Memory: :class:`ResidentCheckpoints` loads the checkpoints' tensors once;
:func:`merge_in_memory` plans the recipe with mergekit's own planner (the plan
``run_merge`` streams to disk) and executes it on the resident tensors, giving exactly
the tensors mergekit would write; :func:`load_merged` copies them into a resident model.
A grid sweep then costs one tensor pass per point instead of a write and a model load::

    resident = ResidentCheckpoints([early, late])
    model = AutoModelForCausalLM.from_pretrained(early)   # once
    for recipe in recipes:
        load_merged(model, merge_in_memory(recipe, resident))
        ...  # generate
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from passk_plugin.atomic import atomic_write_text, umask_file_mode
from passk_plugin.checkpoints import check_checkpoints, is_local, resolve_checkpoint
from passk_plugin.errors import UsageError, read_text
from passk_plugin.outputs import claim_output_dir
from passk_plugin.temps import remove_stale_temps, temp_name

if TYPE_CHECKING:
    import torch
    from mergekit.config import MergeConfiguration

    from passk_plugin.compat.mergekit import TensorRead

MARKER_NAME = "passk_merge.json"


# ---------------------------------------------------------------- recipes


def _resolve_refs(node: Any, key: str | None = None) -> Any:
    """Make every local model path in a raw recipe absolute (mergekit needs that offline)."""
    if isinstance(node, dict):
        return {k: _resolve_refs(v, k) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve_refs(v, key) for v in node]
    if key in ("model", "base_model", "path") and isinstance(node, str):
        # "path@revision" and "path+lora" are mergekit syntax, left for mergekit to read.
        if "@" not in node and "+" not in node and is_local(node):
            return resolve_checkpoint(node)
    return node


def load_recipe(recipe: Any) -> MergeConfiguration:
    """A validated ``MergeConfiguration`` from a YAML path, a dict, a configuration, a
    :class:`~passk_plugin.recipes.GridPoint` or a :class:`~passk_plugin.recipes.RecipeFile`.

    Local model paths are made absolute (checked to exist). Raises FileNotFoundError for a
    missing recipe or checkpoint and ValueError for a recipe that breaks passk's rules:
    ``base_model`` must be set (else mergekit takes config and tokenizer from an arbitrary
    input) and ``tokenizer_source``/``tokenizer`` must not be (they resize embeddings).
    """
    if hasattr(recipe, "to_mergekit"):  # a recipes.GridPoint
        recipe = recipe.to_mergekit()
    elif hasattr(recipe, "point") and hasattr(recipe, "path"):  # a recipes.RecipeFile
        recipe = recipe.path
    path: Path | None = None
    if isinstance(recipe, (str, os.PathLike)):  # read before mergekit (and torch) load
        path = Path(recipe)
        if not path.is_file():
            raise FileNotFoundError(f"recipe not found: {path}")
        recipe = _parse_yaml(read_text(path), path)
        if not isinstance(recipe, dict):
            raise UsageError(f"{path}: not a mergekit recipe (a YAML mapping with merge_method)")
    from mergekit.config import MergeConfiguration

    if isinstance(recipe, MergeConfiguration):
        raw = recipe.model_dump(mode="json", exclude_defaults=True)
    else:
        raw = dict(recipe)
    where = f"{path}: " if path is not None else ""
    _check_method(raw, where)
    raw = _resolve_refs(raw)
    try:
        config = MergeConfiguration.model_validate(raw)
    except Exception as err:  # pydantic and mergekit's own RuntimeErrors
        raise UsageError(f"{where}invalid mergekit recipe: {_first_problem(err)}") from None
    if config.base_model is None:
        raise UsageError(
            f"{where}recipe has no base_model: mergekit would take config and tokenizer from an "
            "arbitrary input; set base_model to the early (or base) checkpoint"
        )
    if config.tokenizer_source is not None or config.tokenizer is not None:
        raise UsageError(
            f"{where}recipe sets tokenizer_source/tokenizer, which rebuilds and resizes "
            "embeddings; leave it out for checkpoints of one run (the tokenizer comes from "
            "base_model)"
        )
    return config


def _parse_yaml(text: str, path: Path) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f"{mark.line + 1}:" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise UsageError(
            f"{path}:{line} not valid YAML ({problem}); fix the file or write it anew "
            "with `passk recipes`"
        ) from None


def _check_method(raw: Mapping[str, Any], where: str) -> None:
    """An unknown merge_method named as such (mergekit raises a bare RuntimeError later)."""
    from mergekit import merge_methods

    method = raw.get("merge_method")
    if method is None:
        raise UsageError(f"{where}the recipe has no merge_method; set one (e.g. linear, slerp)")
    try:
        merge_methods.get(str(method))
    except (RuntimeError, KeyError, ValueError):
        listed = getattr(merge_methods, "registered_methods", None)
        names = sorted(m.spec.name for m in listed()) if callable(listed) else []
        known = f"; mergekit knows: {', '.join(names)}" if names else ""
        raise UsageError(f"{where}unknown merge_method {method!r}{known}") from None


def _first_problem(err: Exception) -> str:
    """pydantic's many-line report as one line: the first problem and where it is."""
    errors = getattr(err, "errors", None)
    if callable(errors):
        try:
            first = errors()[0]
            loc = ".".join(str(x) for x in first.get("loc", ()))
            return f"{loc}: {first.get('msg')}" if loc else str(first.get("msg"))
        except Exception:  # noqa: BLE001 - fall back to the plain text
            pass
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def recipe_hash(config: MergeConfiguration) -> str:
    """sha256 of the canonical recipe (comments and key order do not count)."""
    canonical = json.dumps(config.model_dump(mode="json", exclude_defaults=True), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _model_paths(config: MergeConfiguration) -> list[str]:
    return [str(ref.model.path) for ref in config.referenced_models() if ref.lora is None]


def _check_inputs(config: MergeConfiguration) -> None:
    check_checkpoints(sorted(_model_paths(config)))


# ---------------------------------------------------------------- disk


def _marker(out_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((out_dir / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_complete(out_dir: str | os.PathLike, recipe: Any) -> bool:
    """True when out_dir holds a finished merge of exactly this recipe."""
    out = Path(out_dir)
    marker = _marker(out)
    if marker is None or not (out / "config.json").is_file():
        return False
    if not any(out.glob("*.safetensors")) and not any(out.glob("*.bin")):
        return False
    return marker.get("recipe_sha256") == recipe_hash(load_recipe(recipe))


def merge_recipe(
    recipe_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    cuda: bool | None = None,
    lazy_unpickle: bool = True,
    low_cpu_memory: bool = False,
    copy_tokenizer: bool = True,
    force: bool = False,
    overwrite: bool = False,
    quiet: bool = True,
) -> Path:
    """Merge one recipe into out_dir with mergekit, in-process; return out_dir.

    Skipped when out_dir already holds a complete merge of the same recipe (unless
    ``force``). out_dir must be new, empty or a merge passk wrote (its ``passk_merge.json``
    marker); any other directory is refused unless ``overwrite``, and one holding the
    recipe or its checkpoints always is (:func:`passk_plugin.outputs.claim_output_dir`).
    Nothing passk did not write is ever deleted: the marker lists the files of the merge,
    and only those are replaced or removed by a later merge into the same place.

    The merge is written to a temporary sibling (``<out_dir>.tmp-<host>-<pid>-<random>``,
    whose leftovers from a killed run are removed here) and renamed into place, or moved
    in file by file when out_dir exists, with the marker last, so an interrupted merge
    never looks complete. ``cuda=None`` uses the GPU when torch sees one. Config and
    tokenizer come from the recipe's base_model.
    """
    config = load_recipe(recipe_path)
    digest = recipe_hash(config)
    out = Path(out_dir).expanduser().resolve()
    if not force and is_complete(out, config):
        return out
    claim_output_dir(
        out,
        "merge",
        overwrite=overwrite,
        inputs=[*_model_paths(config), recipe_path],
        recognise=lambda path: _marker(path) is not None,
        flag="output directory",
        create=False,
    )
    _check_inputs(config)
    import torch
    from mergekit.merge import run_merge
    from mergekit.options import MergeOptions

    from passk_plugin.compat.mergekit import flush_loader_cache

    if cuda is None:
        cuda = torch.cuda.is_available()
    options = MergeOptions(
        cuda=cuda,
        lazy_unpickle=lazy_unpickle,
        low_cpu_memory=low_cpu_memory,
        copy_tokenizer=copy_tokenizer,
        quiet=quiet,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out)
    tmp = out.parent / temp_name(out.name)
    source: str | None = read_text(recipe_path)
    raw = yaml.safe_load(source)
    if _resolve_refs(raw) != raw:
        source = None  # relative paths were resolved: record the recipe that actually ran
    try:
        run_merge(config, str(tmp), options=options, config_source=source)
        written = [p for p in tmp.rglob("*") if p.is_file() and not p.is_symlink()]
        mode = umask_file_mode()
        for path in written:  # mergekit writes its shards 0600, whatever the umask
            path.chmod(mode)
        files = sorted(p.relative_to(tmp).as_posix() for p in written)
        marker = {
            "recipe_sha256": digest,
            "recipe": str(Path(recipe_path).resolve()),
            "mergekit_version": _mergekit_version(),
            "device": options.device,
            "files": files,
        }
        _install(tmp, out, marker)
    finally:
        flush_loader_cache()
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _install(tmp: Path, out: Path, marker: dict[str, Any]) -> None:
    """Put the finished merge in `tmp` at `out`, the marker last.

    A new `out` is one rename. An existing one (empty, an earlier merge, or a directory the
    user passed --overwrite for) gets the new files moved in; of its other files only those
    an earlier merge's marker lists are removed, so nothing passk did not write is lost.
    """
    body = json.dumps(marker, indent=2) + "\n"
    if not out.exists():
        (tmp / MARKER_NAME).write_text(body, encoding="utf-8")
        os.replace(tmp, out)
        return
    new: list[str] = marker["files"]
    old_marker = _marker(out) or {}
    old = [f for f in old_marker.get("files", []) if isinstance(f, str)]
    # From here until the final marker, `out` is marked as passk's but not complete.
    pending = {**marker, "recipe_sha256": None, "files": sorted({*old, *new})}
    atomic_write_text(out / MARKER_NAME, json.dumps(pending, indent=2) + "\n")
    for name in sorted(set(old) - set(new)):
        target = out / name
        if _holds(out, target) and target.is_file():
            target.unlink()
    for name in new:
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp / name, target)
    atomic_write_text(out / MARKER_NAME, body)


def _holds(directory: Path, path: Path) -> bool:
    """Whether `path` lies inside `directory` (a marker's file list is not trusted blindly)."""
    return directory.resolve() in path.resolve().parents


def _mergekit_version() -> str:
    from importlib.metadata import version

    return version("mergekit")


# ---------------------------------------------------------------- memory


class ResidentCheckpoints:
    """The tensors of local checkpoints, read once with mergekit's loader and kept in memory.

    Keys are absolute checkpoint paths. ``device`` is where the tensors live (and where
    merged tensors are returned).
    """

    def __init__(self, checkpoints: Iterable[str | os.PathLike] = (), *, device: str = "cpu"):
        import torch

        self.device = torch.device(device)
        self._tensors: dict[str, dict[str, torch.Tensor]] = {}
        for ref in checkpoints:
            self.add(ref)

    @classmethod
    def for_recipes(cls, recipes: Iterable[Any], *, device: str = "cpu") -> ResidentCheckpoints:
        """Load every checkpoint the recipes reference."""
        paths: dict[str, None] = {}
        for recipe in recipes:
            paths.update(dict.fromkeys(_model_paths(load_recipe(recipe))))
        return cls(paths, device=device)

    def add(self, ref: str | os.PathLike) -> str:
        """Load a checkpoint (once); return its absolute path."""
        from mergekit.io.lazy_tensor_loader import LazyTensorLoader

        path = resolve_checkpoint(ref)
        if not is_local(path):
            raise ValueError(f"{path} is a hub id; in-memory merging needs local checkpoints")
        if path not in self._tensors:
            loader = LazyTensorLoader.from_disk(path, lazy_unpickle=True)
            self._tensors[path] = {
                name: loader.get_tensor(name, device=str(self.device))
                for name in loader.index.tensor_paths
            }
            loader.flush()
        return path

    def tensors(self, ref: str | os.PathLike) -> Mapping[str, torch.Tensor]:
        return self._tensors[resolve_checkpoint(ref)]

    @property
    def paths(self) -> list[str]:
        return list(self._tensors)

    def __contains__(self, ref: object) -> bool:
        if not isinstance(ref, (str, os.PathLike)):
            return False
        try:
            return resolve_checkpoint(ref) in self._tensors
        except (FileNotFoundError, ValueError):
            return False

    def nbytes(self) -> int:
        return sum(
            t.numel() * t.element_size() for sd in self._tensors.values() for t in sd.values()
        )


def _resident_value(read: TensorRead, resident: ResidentCheckpoints) -> torch.Tensor | None:
    """What mergekit would read from disk for one input tensor, taken from memory instead."""
    tensors = resident._tensors[read.checkpoint]
    for name in read.names:
        if name in tensors:
            x = tensors[name]
            if read.dtype is not None and read.dtype != x.dtype:
                x = x.to(dtype=read.dtype)
            return x
    # Not stored under any known name: mergekit's checkpoint conversions apply (rare).
    return read.from_disk()


def merge_in_memory(
    recipe: Any, resident: ResidentCheckpoints, *, device: str | None = None
) -> dict[str, torch.Tensor]:
    """The merged state dict of one recipe, computed from resident tensors.

    Runs mergekit's own plan (MergePlanner.plan_to_disk, as run_merge does) and merge
    method code, with every tensor load served from `resident` and the final dtype
    conversion mergekit applies before saving; the result is bit-identical to the
    safetensors mergekit writes for the recipe on the same device. ``device`` is the math
    device (default: where the resident tensors live).
    """
    from passk_plugin.compat.mergekit import merged_tensors

    config = load_recipe(recipe)
    missing = [p for p in _model_paths(config) if p not in resident._tensors]
    if missing:
        raise ValueError(f"recipe uses checkpoints that are not resident: {', '.join(missing)}")
    return merged_tensors(
        config,
        math_device=device or str(resident.device),
        storage_device=resident.device,
        read=lambda read: _resident_value(read, resident),
    )


def load_merged(
    model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], *, copy: bool = False
) -> None:
    """Put merged tensors into `model`'s parameters and persistent buffers.

    By default the tensors are handed over without a copy (each parameter's ``.data`` is
    replaced): the model then owns them, so do not modify `state_dict` afterwards.
    ``copy=True`` copies into the model's existing storage instead (slower; use it when
    something else holds references to that storage).

    Strict: every persistent tensor of the model must be given (a tied one may be left out
    when the tensor it shares storage with is given), with the same shape, dtype and device
    (no silent casts or moves); names the model lacks are an error. Of tied names, the
    first in the model's order supplies the shared tensor.
    """
    import torch

    own = model.state_dict()
    extra = sorted(set(state_dict) - set(own))
    if extra:
        raise ValueError(f"merged weights have tensors the model lacks: {extra[:5]}")
    given_ptrs = {own[name].data_ptr() for name in state_dict}
    for name, target in own.items():
        if name not in state_dict:
            if target.data_ptr() in given_ptrs:
                continue  # tied to a tensor that is being set
            raise ValueError(f"merged weights lack {name!r}")
        source = state_dict[name]
        if (source.shape, source.dtype, source.device) != (
            target.shape,
            target.dtype,
            target.device,
        ):
            raise ValueError(
                f"{name}: merged tensor is {source.dtype} {list(source.shape)} on "
                f"{source.device}, model has {target.dtype} {list(target.shape)} on "
                f"{target.device}"
            )
    with torch.no_grad():
        if copy:
            done: set[int] = set()
            for name, target in own.items():
                if name in state_dict and target.data_ptr() not in done:
                    target.copy_(state_dict[name])
                    done.add(target.data_ptr())
            return
        seen: set[int] = set()
        for name, param in model.named_parameters(remove_duplicate=False):
            if id(param) in seen or name not in state_dict:
                continue  # a tied parameter already set, or one given under its tied name
            param.data = state_dict[name]
            seen.add(id(param))
        for name, _ in model.named_buffers(remove_duplicate=False):
            if name in state_dict:
                module_name, _, attr = name.rpartition(".")
                model.get_submodule(module_name)._buffers[attr] = state_dict[name]
