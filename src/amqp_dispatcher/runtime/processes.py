"""How many processes a service runs: the `processes` setting, its override, and `auto`.

Owns reading `processes` (a number, or `auto`) and DISPATCHER_PROCESSES, which overrides it per
deployment, and what `auto` means: the CPUs this process may use, which is the smaller of the
CPUs it may be scheduled on (its affinity, as `taskset` or a cpuset sets it) and the CPU quota
of its cgroup or of any cgroup above it (a container's CPU limit, systemd's CPUQuota=, rounded
up), and never less than 1. Every problem is a
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
MEMBERSHIP = Path("/proc/self/cgroup")


def wanted(configured: int | str, environ: Mapping[str, str]) -> int:
    """The number of processes to run: DISPATCHER_PROCESSES if set, else the config's value."""
    text = environ.get(VARIABLE, "").strip()
    if text:
        return _count(text, f"{VARIABLE}={safe(text)!r}")
    return _count(str(configured), f"processes: {safe(str(configured))!r} in the config")


def _count(text: str, where: str) -> int:
    if text.lower() == "auto":
        return usable_cpus()
    if not _DIGITS.fullmatch(text) or not 1 <= int(text) <= MAXIMUM:
        raise ConfigurationError(f"{where}: expected a number of processes from 1 to {MAXIMUM}, or auto")
    return int(text)


def usable_cpus(cgroup: Path = CGROUP, membership: Path = MEMBERSHIP) -> int:
    """The CPUs this process may use: its affinity, capped by its cgroups' CPU quotas."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cpus = os.cpu_count() or 1
    quotas = [quota for folder in _cgroup_folders(cgroup, membership) if (quota := _quota(folder)) is not None]
    if quotas:
        cpus = min(cpus, *quotas)
    return max(1, cpus)


def _cgroup_folders(root: Path, membership: Path) -> list[Path]:
    """The folders of this process's CPU cgroup and of each cgroup above it, up to `root`: a quota
    may be set on any of them (systemd's CPUQuota= on a unit, a container runtime's on a pod or
    container). Read from /proc/self/cgroup; `root` alone when it cannot be read."""
    try:
        lines = membership.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        lines = []
    folders = []
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":  # v2: one hierarchy
            base = root
        elif "cpu" in controllers.split(","):  # v1: the cpu controller's hierarchy
            base = root / controllers
        else:
            continue
        parts = [part for part in path.split("/") if part and part not in (".", "..")]
        folders += [base.joinpath(*parts[:depth]) for depth in range(len(parts), -1, -1)]
    return folders or [root, root / "cpu", root / "cpu,cpuacct"]


def _quota(folder: Path) -> int | None:
    """The CPU quota set in one cgroup folder, in whole CPUs rounded up: v2's cpu.max, or v1's
    cfs_quota_us over cfs_period_us; None when there is none ("max", -1) or it cannot be read."""
    try:
        if (folder / "cpu.max").exists():
            fields = (folder / "cpu.max").read_text().split()
        else:
            fields = [
                *(folder / "cpu.cfs_quota_us").read_text().split(),
                *(folder / "cpu.cfs_period_us").read_text().split(),
            ]
    except (OSError, UnicodeDecodeError):
        return None
    if len(fields) != 2 or not all(_DIGITS.fullmatch(field) for field in fields) or int(fields[1]) == 0:
        return None
    return max(1, math.ceil(int(fields[0]) / int(fields[1])))
