"""Executors run a sweep's grid points: one after another here, or elsewhere.

    local   passk_plugin.executors.local.LocalExecutor   in this process, in order
    ray     passk_plugin.executors.ray.RayExecutor       one Ray task per grid point

`passk_plugin.sweep.run.make_executor` chooses one by name with plain imports; Ray is imported
only when it is asked for. The protocol and `PointFailures` are in `executors.base`.
"""
