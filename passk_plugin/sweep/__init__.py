"""Sweeps: merge -> evaluate -> store a grid of points, resumable. One module per job:

- `settings`: what decides a run's results (`EvalSettings`) and how it runs (`RunOptions`).
- `evaluation`: the lm_eval call for one point (arguments, task manager, results summary).
- `resident`: --in-memory models that stay loaded across points (transformers or vLLM).
- `point`: one point, merged, evaluated and stored (`run_point`); idempotent.
- `preflight`: every check a run needs, done before the first merge or model load.
- `reconcile`: a rerun against the stored sweep.json.
- `run`: the whole run (`run_sweep`) and the choice of executor.

Grid points are `passk_plugin.grid.GridPoint`; executors live in `passk_plugin.executors`.
"""
