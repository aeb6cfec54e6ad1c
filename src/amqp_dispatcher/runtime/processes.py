"""How many processes a service runs: the `processes` setting, its override, and `auto`.

Owns reading `processes` (a number, or `auto`) and DISPATCHER_PROCESSES, which overrides it per
deployment, and what `auto` means: the CPUs this process may use, which is the smaller of the
CPUs it may be scheduled on (its affinity, as `taskset` or a cpuset sets it) and its cgroup's
CPU quota (a container's CPU limit, rounded up), and never less than 1. Every problem is a
ConfigurationError of one line naming where the value came from.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from pathlib import Path

from .errors import ConfigurationError
from .logs import safe

VARIABLE = "DISPATCHER_PROCESSES"
MAXIMUM = 256  # the schema's bound too
_DIGITS = re.compile(r"[0-9]+")
CGROUP = Path("/sys/fs/cgroup")


def wanted(configured: int | str, environ: Mapping[str, str], *, cgroup: Path = CGROUP) -> int:
    """The number of processes to run: DISPATCHER_PROCESSES if set, else the config's value."""
    text = environ.get(VARIABLE, "").strip()
    if text:
        return _count(text, f"{VARIABLE}={safe(text)!r}", cgroup)
    return _count(str(configured), f"processes: {safe(str(configured))!r} in the config", cgroup)


def _count(text: str, where: str, cgroup: Path) -> int:
    if text.lower() == "auto":
        return usable_cpus(cgroup)
    if not _DIGITS.fullmatch(text) or not 1 <= int(text) <= MAXIMUM:
        raise ConfigurationError(f"{where}: expected a number of processes from 1 to {MAXIMUM}, or auto")
    return int(text)


def usable_cpus(cgroup: Path = CGROUP) -> int:
    """The CPUs this process may use: its affinity, capped by its cgroup's CPU quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cpus = os.cpu_count() or 1
    quota = _cgroup_quota(cgroup)
    if quota is not None:
        cpus = min(cpus, quota)
    return max(1, cpus)


def _cgroup_quota(root: Path) -> int | None:
    """The CPU quota, in whole CPUs rounded up, of cgroup v2 (cpu.max) or v1 (cfs_quota_us); None
    when there is none, or it cannot be read."""
    for quota_file, period_file in (
        (root / "cpu.max", None),
        (root / "cpu" / "cpu.cfs_quota_us", root / "cpu" / "cpu.cfs_period_us"),
        (root / "cpu,cpuacct" / "cpu.cfs_quota_us", root / "cpu,cpuacct" / "cpu.cfs_period_us"),
    ):
        try:
            fields = quota_file.read_text().split()
            if period_file is not None:
                fields += period_file.read_text().split()
        except (OSError, UnicodeDecodeError):
            continue
        if len(fields) != 2 or not _DIGITS.fullmatch(fields[1]) or int(fields[1]) == 0:
            return None  # "max 100000" (no quota), "-1 100000" (v1: no quota), or unreadable
        if not _DIGITS.fullmatch(fields[0]):
            return None
        return max(1, math.ceil(int(fields[0]) / int(fields[1])))
    return None
