"""Counts the points a sweep evaluates or merges (shared by the sweep tests)."""

from __future__ import annotations


class Counter:
    """Wraps evaluation.evaluate / point.merge_point to record the ids they ran on."""

    def __init__(self, fn, fail_after: int | None = None):
        self.fn, self.ids, self.fail_after = fn, [], fail_after

    def __call__(self, ctx, spec, *args):
        if self.fail_after is not None and len(self.ids) >= self.fail_after:
            raise KeyboardInterrupt  # as if Ctrl-C arrived during this point
        self.ids.append(spec.id)
        return self.fn(ctx, spec, *args)
