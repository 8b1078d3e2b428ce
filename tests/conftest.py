"""Test-session set-up. The default run is spread over pytest-xdist workers (pyproject's addopts:
one per usable CPU; a worker that runs out of tests takes half of another's pending ones): each
worker is pinned to its own CPU, so that torch in it, and every command it starts, runs one thread
on that CPU (cryoscape.threads counts the CPUs a process may use) instead of all workers' threads
competing for every CPU."""

import os

_worker = os.environ.get("PYTEST_XDIST_WORKER")
if _worker and hasattr(os, "sched_setaffinity"):
    _cpus = sorted(os.sched_getaffinity(0))
    if len(_cpus) > 1:
        os.sched_setaffinity(0, {_cpus[int(_worker.removeprefix("gw")) % len(_cpus)]})
        os.environ["OMP_NUM_THREADS"] = "1"
        import torch

        torch.set_num_threads(1)

# The longest files (minutes on one CPU) come first, so that no worker starts one of them when the
# others are nearly done.
_LONGEST_FIRST = ("test_readme.py", "test_benchmark_smoke.py", "test_abinit_homo.py", "test_abinit_het.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(_LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
