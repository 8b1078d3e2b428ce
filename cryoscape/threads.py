"""How many CPU threads torch uses: the CPUs this process may actually run on, which on a cluster
(SLURM's CPU affinity, a container's cgroup quota) is often fewer than ``os.cpu_count()``, shared
among the processes torchrun started on this node. Too many threads on too few CPUs makes bfloat16
training several times slower."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

from cryoscape.errors import InputError


def cgroup_cpu_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """The CPU quota of this process's cgroup in CPUs (cgroup v2 ``cpu.max``, or v1
    ``cpu.cfs_quota_us``/``cpu.cfs_period_us``); None when there is none."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota_us <= 0 or period_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None


def usable_cpus() -> tuple[int, str]:
    """(CPUs this process may use, how that was found): its affinity mask, capped by a cgroup quota."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        affinity = os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    usable = affinity if quota is None else max(1, min(affinity, math.floor(quota)))
    how = f"affinity {affinity}" + ("" if quota is None else f", cgroup quota {quota:g}")
    return usable, how


def configure_threads(requested: int | None = None) -> str:
    """Set torch's intra-op threads: ``requested``, or the usable CPUs divided among torchrun's
    processes on this node (LOCAL_WORLD_SIZE). Returns a sentence for the log."""
    if requested is not None and requested < 1:
        raise InputError(f"--threads must be at least 1, got {requested}")
    usable, how = usable_cpus()
    local = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    threads = requested or max(1, usable // local)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    else:  # torch takes its thread count from here when a command imports it (commands that never do stay light)
        os.environ["OMP_NUM_THREADS"] = str(threads)
    source = (
        "as asked (--threads)"
        if requested
        else f"{usable} usable CPUs ({how})" + (f" shared by {local} processes" if local > 1 else "")
    )
    return f"using {threads} CPU thread(s): {source}"
