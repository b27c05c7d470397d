"""Crashes, as a host meets them: an app server's master killed outright comes back under
systemd (or supervisor), and a worker killed outright is replaced by its master."""

from __future__ import annotations

import testinfra
from conftest import SUPERVISOR, eventually, fetch, journal, live_unit, master_pid, slot_running, worker_pids
from gunship_testkit import UWSGI


def configured_workers(node: testinfra.host.Host) -> int:
    return 2 * int(node.check_output("nproc")) + 1  # the default the scenario deploys


def test_a_killed_master_comes_back_and_loses_no_request(container: str, node: testinfra.host.Host) -> None:
    unit = live_unit(node)
    before = master_pid(node)
    assert before > 0, journal(node, unit)
    node.check_output(f"kill -KILL {before}")
    if not SUPERVISOR:
        # The listening socket belongs to systemd, not to the dead master: a request sent now
        # waits in its queue until the restarted master takes it.
        assert fetch(container, "/healthz").status == 200, journal(node, unit)
    # (Under supervisor the socket died with the master: Nginx answers 502 until it is back.)
    assert eventually(lambda: master_pid(node) not in (0, before), 45), journal(node, unit)
    after, workers = master_pid(node), configured_workers(node)
    assert eventually(lambda: len(worker_pids(node, after)) == workers, 45), journal(node, unit)
    # supervisord says STARTING until the program has run for startsecs: RUNNING comes after.
    assert eventually(lambda: slot_running(node, unit), 15), journal(node, unit)
    assert eventually(lambda: fetch(container, "/healthz").status == 200, 30), journal(node, unit)


def test_a_killed_worker_is_replaced_by_its_master(container: str, node: testinfra.host.Host) -> None:
    unit = live_unit(node)
    master = master_pid(node)
    workers = worker_pids(node, master)
    assert len(workers) == configured_workers(node), journal(node, unit)
    node.check_output(f"kill -KILL {workers[0]}")

    def replaced() -> bool:
        now = worker_pids(node, master)
        return workers[0] not in now and len(now) == configured_workers(node)

    assert eventually(replaced, 45), journal(node, unit)
    assert master_pid(node) == master  # the master itself was never restarted
    # What the master says of it (uWSGI: "DAMN ! worker 1 (pid: ...) died, killed by signal 9").
    pid = workers[0]
    said = f"(pid: {pid}) died, killed by signal 9" if UWSGI else f"Worker (pid:{pid}) was sent SIGKILL"
    assert said in journal(node, unit, 80)
    assert fetch(container, "/healthz").status == 200
