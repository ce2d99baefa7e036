"""Collapse identical generation requests into groups and scatter results back.

lm_eval turns a task's ``repeats: K`` into K identical ``generate_until`` requests (same
context, same generation settings). A backend that samples n completions per prompt wants
them as one group of size K. These functions are pure and know nothing about any model
backend: they work on lm_eval ``Instance`` objects or on their ``(context, gen_kwargs)`` args.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class RequestGroup:
    """Identical requests: one context, one generation setting, several positions.

    ``indices`` are positions in the original request list, in increasing order.
    """

    context: str
    gen_kwargs: Mapping[str, Any]
    indices: tuple[int, ...]

    @property
    def size(self) -> int:
        return len(self.indices)

    @property
    def settings_key(self) -> str:
        return settings_key(self.gen_kwargs)


def settings_key(gen_kwargs: Mapping[str, Any]) -> str:
    """A canonical string for generation settings: equal settings give equal keys.

    Key order does not matter and tuples compare equal to lists (lm_eval's ``until`` may be
    either); values JSON cannot encode fall back to ``repr``.
    """
    if not isinstance(gen_kwargs, Mapping):
        raise TypeError(f"generation settings must be a dict, got {type(gen_kwargs).__name__}")
    return json.dumps(gen_kwargs, sort_keys=True, default=repr, ensure_ascii=False)


def request_args(requests: Iterable[Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """The ``(context, gen_kwargs)`` pair of each request (lm_eval Instances or pairs)."""
    out: list[tuple[str, Mapping[str, Any]]] = []
    for i, req in enumerate(requests):
        args = req.args if hasattr(req, "args") else req
        if not isinstance(args, (tuple, list)) or len(args) != 2:
            raise ValueError(
                f"request {i}: expected generate_until arguments (context, gen_kwargs), "
                f"got {args!r}"
            )
        context, gen_kwargs = args
        if not isinstance(context, str):
            raise ValueError(f"request {i}: context must be a string, got {type(context).__name__}")
        if not isinstance(gen_kwargs, Mapping):
            raise ValueError(
                f"request {i}: gen_kwargs must be a dict, got {type(gen_kwargs).__name__}"
            )
        out.append((context, gen_kwargs))
    return out


def group_requests(requests: Iterable[Any]) -> list[RequestGroup]:
    """Group identical requests (same context and same settings), in order of first appearance."""
    order: dict[tuple[str, str], list[int]] = {}
    first: dict[tuple[str, str], tuple[str, Mapping[str, Any]]] = {}
    for i, (context, gen_kwargs) in enumerate(request_args(requests)):
        key = (context, settings_key(gen_kwargs))
        if key not in order:
            order[key] = []
            first[key] = (context, gen_kwargs)
        order[key].append(i)
    return [
        RequestGroup(context=first[key][0], gen_kwargs=first[key][1], indices=tuple(idx))
        for key, idx in order.items()
    ]


def split_group(group: RequestGroup, max_size: int) -> list[RequestGroup]:
    """Cut a group into consecutive pieces of at most ``max_size`` requests."""
    if max_size < 1:
        raise ValueError(f"max_size must be at least 1, got {max_size}")
    return [
        RequestGroup(group.context, group.gen_kwargs, group.indices[i : i + max_size])
        for i in range(0, group.size, max_size)
    ]


def group_by_settings(groups: Sequence[RequestGroup]) -> dict[str, list[RequestGroup]]:
    """Groups that share generation settings (and so may share a batch), in order."""
    out: dict[str, list[RequestGroup]] = {}
    for group in groups:
        out.setdefault(group.settings_key, []).append(group)
    return out


def scatter(
    groups: Sequence[RequestGroup], results: Sequence[Sequence[T]], n_requests: int
) -> list[T]:
    """Put each group's results back at its requests' original positions.

    ``results[g]`` holds one result per request of ``groups[g]``, in the group's order.
    Every position in ``range(n_requests)`` must be covered exactly once.
    """
    if len(groups) != len(results):
        raise ValueError(f"{len(groups)} groups but {len(results)} result lists")
    out: list[Any] = [None] * n_requests
    filled = [False] * n_requests
    for group, res in zip(groups, results, strict=True):
        if len(res) != group.size:
            raise ValueError(
                f"group of {group.size} requests got {len(res)} results "
                f"(context starts {group.context[:40]!r})"
            )
        for idx, value in zip(group.indices, res, strict=True):
            if not 0 <= idx < n_requests:
                raise ValueError(f"request index {idx} outside 0..{n_requests - 1}")
            if filled[idx]:
                raise ValueError(f"request {idx} belongs to more than one group")
            out[idx] = value
            filled[idx] = True
    missing = [i for i, f in enumerate(filled) if not f]
    if missing:
        raise ValueError(f"no result for requests {missing[:10]}")
    return out
