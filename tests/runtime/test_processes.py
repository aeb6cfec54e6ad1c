"""`processes`, DISPATCHER_PROCESSES and `auto`; the worker's identity; the counts of several workers.

What users rely on: any value they write gives a number of processes or one clear line, `auto`
never asks for more CPUs than the container may use, and the metrics of a service of several
processes add up to what its workers counted, without ever going down when one is replaced.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amqp_dispatcher.runtime import processes, snapshot, worker
from amqp_dispatcher.runtime.errors import ConfigurationError


def test_the_environment_overrides_the_config() -> None:
    assert processes.wanted(1, {}) == 1
    assert processes.wanted(3, {}) == 3
    assert processes.wanted(1, {"DISPATCHER_PROCESSES": " 4 "}) == 4
    assert processes.wanted("auto", {}) == processes.usable_cpus()
    assert processes.wanted(8, {"DISPATCHER_PROCESSES": "AUTO"}) == processes.usable_cpus()


@given(st.text(max_size=12))
def test_any_override_is_a_number_of_processes_or_one_line_naming_the_variable(text: str) -> None:
    try:
        count = processes.wanted(1, {"DISPATCHER_PROCESSES": text})
    except ConfigurationError as error:
        message = str(error)
        assert message.startswith("DISPATCHER_PROCESSES=") and "\n" not in message
        assert "from 1 to 256, or auto" in message
    else:
        assert 1 <= count <= processes.MAXIMUM
        assert text.strip() == "" or text.strip().lower() == "auto" or int(text.strip()) == count


HYBRID = "1:cpu,cpuacct:/\n0::/\n"  # cgroup v1's cpu controller beside v2, as this machine has


@pytest.mark.parametrize(
    "membership,files,cpus",
    [
        ("0::/\n", {"cpu.max": "max 100000\n"}, None),
        ("0::/\n", {"cpu.max": "150000 100000\n"}, 2),
        ("0::/\n", {"cpu.max": "50000 100000\n"}, 1),
        ("0::/\n", {"cpu.max": "100000 100000\n"}, 1),
        (HYBRID, {"cpu,cpuacct/cpu.cfs_quota_us": "-1\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"}, None),
        (HYBRID, {"cpu,cpuacct/cpu.cfs_quota_us": "300000\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"}, 3),
        # systemd's CPUQuota= on the unit, seen from the host's view of the tree
        ("0::/system.slice/shop.service\n", {"system.slice/shop.service/cpu.max": "200000 100000\n"}, 2),
        # a quota on a parent (a pod) is a limit for every container below it
        (
            "0::/kubepods/pod1/c1\n",
            {"kubepods/pod1/cpu.max": "100000 100000\n", "kubepods/pod1/c1/cpu.max": "max 100000\n"},
            1,
        ),
        ("", {"cpu.max": "250000 100000\n"}, 3),  # /proc/self/cgroup unreadable: the root alone
        ("0::/\n", {}, None),
    ],
)
def test_auto_is_capped_by_the_cpu_limit_of_the_process_cgroup_and_those_above(
    tmp_path: Path, membership: str, files: dict[str, str], cpus: int | None
) -> None:
    root = tmp_path / "cgroup"
    root.mkdir()
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    proc = tmp_path / "cgroup-membership"
    if membership:
        proc.write_text(membership)
    affinity = len(os.sched_getaffinity(0))
    assert processes.usable_cpus(root, proc) == (affinity if cpus is None else min(affinity, cpus))


@given(st.binary(max_size=40), st.binary(max_size=12), st.text(max_size=60))
def test_any_cgroup_content_gives_at_least_one_cpu_never_an_error(quota: bytes, period: bytes, membership: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "cpu.max").write_bytes(quota)
        (root / "cpu").mkdir()
        (root / "cpu" / "cpu.cfs_quota_us").write_bytes(quota)
        (root / "cpu" / "cpu.cfs_period_us").write_bytes(period)
        (root / "membership").write_text(membership, errors="surrogateescape")
        assert 1 <= processes.usable_cpus(root, root / "membership") <= len(os.sched_getaffinity(0))


@given(st.text(max_size=20))
def test_a_worker_identity_is_what_a_parent_sets_or_one_line(text: str) -> None:
    try:
        identity = worker.from_environment({"DISPATCHER_WORKER": text})
    except ConfigurationError as error:
        assert "\n" not in str(error) and "unset it" in str(error)
    else:
        assert identity is None or (1 <= identity.index <= identity.count and identity.environment() == text.strip())


# Snapshots of workers, as they report them: counts that only grow, states of now.
counts = st.integers(min_value=0, max_value=10**6)


@st.composite
def snapshots(draw: st.DrawFn, entries: int = 2) -> snapshot.Snapshot:
    taken = snapshot.empty(entries)
    for entry in taken["entries"]:
        entry["received"] = draw(counts)
        entry["settled"]["ack"] = draw(counts)
        entry["handler"]["counts"][3] = draw(counts)
        entry["handler"]["total"] = float(draw(counts))
        entry["in_flight"] = draw(st.integers(0, 100))
        entry["consuming"] = draw(st.integers(0, 1))
    taken["service"]["workers"] = 1  # what take() says of the process it runs in
    taken["service"]["reconnects"] = draw(counts)
    taken["service"]["publishes"]["confirmed"] = draw(counts)
    taken["service"]["consuming_open"] = draw(st.integers(0, 1))
    taken["service"]["publishing_blocked"] = draw(st.integers(0, 1))
    return taken


@given(st.lists(snapshots(), min_size=1, max_size=4))
def test_the_whole_service_adds_counts_and_requires_every_worker_for_a_state(
    workers: list[snapshot.Snapshot],
) -> None:
    total = snapshot.merge(workers, snapshot.empty(2))
    for index, entry in enumerate(total["entries"]):
        parts = [worker["entries"][index] for worker in workers]
        assert entry["received"] == sum(part["received"] for part in parts)
        assert entry["settled"]["ack"] == sum(part["settled"]["ack"] for part in parts)
        assert entry["handler"]["counts"][3] == sum(part["handler"]["counts"][3] for part in parts)
        assert entry["in_flight"] == sum(part["in_flight"] for part in parts)
        assert entry["consuming"] == min(part["consuming"] for part in parts)
    assert total["service"]["consuming_open"] == min(worker["service"]["consuming_open"] for worker in workers)
    assert total["service"]["publishing_blocked"] == max(worker["service"]["publishing_blocked"] for worker in workers)
    assert total["service"]["workers"] == len(workers)


@given(st.lists(snapshots(), min_size=2, max_size=4), st.data())
def test_no_count_goes_down_when_a_worker_ends(workers: list[snapshot.Snapshot], data: st.DataObject) -> None:
    before = snapshot.merge(workers, snapshot.empty(2))
    ended = data.draw(st.integers(0, len(workers) - 1))
    pristine = copy.deepcopy(workers[ended])
    retired = snapshot.merge([snapshot.retire(workers[ended])], snapshot.empty(2))
    after = snapshot.merge([w for i, w in enumerate(workers) if i != ended], retired)
    assert workers[ended] == pristine, "merging never changes a worker's report"
    for kind in ("received", "replacements", "cancels"):
        assert [e[kind] for e in after["entries"]] == [e[kind] for e in before["entries"]]
    assert after["entries"][0]["settled"] == before["entries"][0]["settled"]
    assert after["service"]["reconnects"] == before["service"]["reconnects"]
    assert after["service"]["workers"] == len(workers) - 1
    assert [e["in_flight"] for e in after["entries"]] == [
        e["in_flight"] - workers[ended]["entries"][i]["in_flight"] for i, e in enumerate(before["entries"])
    ]


def test_with_no_worker_running_nothing_is_live() -> None:
    total = snapshot.merge([], snapshot.empty(1))
    assert total["entries"][0]["consuming"] == 0 and total["service"]["consuming_open"] == 0
