"""Crashes, as a host meets them: a Gunicorn master killed outright comes back under systemd,
and a worker killed outright is replaced by its master. Users see answers throughout."""

from __future__ import annotations

import time
from collections.abc import Callable

import testinfra
from conftest import fetch, journal, live_unit


def master_pid(node: testinfra.host.Host) -> int:
    return int(node.check_output(f"systemctl show -p MainPID --value {live_unit(node)}.service"))


def workers_of(node: testinfra.host.Host, master: int) -> list[int]:
    return [int(pid) for pid in node.run(f"ps --no-headers -o pid --ppid {master}").stdout.split()]


def configured_workers(node: testinfra.host.Host) -> int:
    return 2 * int(node.check_output("nproc")) + 1  # the default the scenario deploys


def eventually(check: Callable[[], bool], seconds: float = 45) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.5)
    return check()


def test_a_killed_master_comes_back_and_loses_no_request(container: str, node: testinfra.host.Host) -> None:
    unit = live_unit(node)
    before = master_pid(node)
    assert before > 0, journal(node, unit)
    node.check_output(f"kill -KILL {before}")
    # The listening socket belongs to systemd, not to the dead master: a request sent now waits
    # in its queue until the restarted master takes it.
    assert fetch(container, "/healthz").status == 200, journal(node, unit)
    assert eventually(lambda: master_pid(node) not in (0, before)), journal(node, unit)
    after = master_pid(node)
    assert eventually(lambda: len(workers_of(node, after)) == configured_workers(node)), journal(node, unit)
    assert node.service(f"{unit}.service").is_running


def test_a_killed_worker_is_replaced_by_its_master(container: str, node: testinfra.host.Host) -> None:
    unit = live_unit(node)
    master = master_pid(node)
    workers = workers_of(node, master)
    assert len(workers) == configured_workers(node), journal(node, unit)
    node.check_output(f"kill -KILL {workers[0]}")

    def replaced() -> bool:
        now = workers_of(node, master)
        return workers[0] not in now and len(now) == configured_workers(node)

    assert eventually(replaced), journal(node, unit)
    assert master_pid(node) == master  # the master itself was never restarted
    assert f"Worker (pid:{workers[0]}) was sent SIGKILL" in journal(node, unit, 80)
    assert fetch(container, "/healthz").status == 200
