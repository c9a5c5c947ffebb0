"""Benchmark plugins by name.

Each plugin is named by the module and class that implement it and imported only when
asked for, so a machine without (say) LIBERO can still run Meta-World. Adding a plugin is
one line in PLUGINS, e.g. "libero": ("vlm4vla.sim.libero_env", "LiberoBenchmark").
"""

from __future__ import annotations

import importlib

from vlm4vla.sim.base import Benchmark

PLUGINS: dict[str, tuple[str, str]] = {
    "metaworld": ("vlm4vla.sim.metaworld_env", "MetaWorldBenchmark"),
    "libero": ("vlm4vla.sim.libero_env", "LiberoBenchmark"),
    "calvin": ("vlm4vla.sim.calvin", "CalvinBenchmark"),
    "simpler_bridge": ("vlm4vla.sim.simpler_bridge", "SimplerBridgeBenchmark"),
}
# Plugins evaluated per chain of subtasks (the class says `chains = True`; data here, so
# config validation knows it without importing the plugin; tests/test_chains.py checks it)
CHAINED = ("calvin",)


def get_benchmark(name: str) -> Benchmark:
    """A fresh instance of the benchmark plugin called `name`."""
    if name not in PLUGINS:
        raise KeyError(f"unknown benchmark plugin {name!r}; known plugins: "
                       f"{', '.join(sorted(PLUGINS))} (register new ones in {__name__}.PLUGINS)")
    module, cls = PLUGINS[name]
    return getattr(importlib.import_module(module), cls)()
