"""The release cycle as a user lives it, in order, over real SSH, while a load loop from the
host counts every answer: v1, v2, `fab rollback`, `fab rollback --to`, a v3 that does not
import and a v4 that fails its health check (both refused, neither ever chosen), the rollback
playbook, two deploys at once, `fab releases/status/scale/unlock`. Not one request fails.

The tests build on each other (each step starts from what the one before left live), as the
commands do for a user; pytest runs them in file order."""

from __future__ import annotations

import getpass
import json
import subprocess
import threading
import time
from pathlib import Path

import pytest
import testinfra
from conftest import HOST, HTTP_PORT, deploy, fab, ok, refused, run_playbook, served
from gunship_testkit import (
    APP,
    ROOT,
    LoadLoop,
    audit,
    eventually,
    fail_health,
    live_record,
    live_slot,
    release_versions,
    versioned_source,
)

# Release ids by version, as the steps create them.
IDS: dict[str, str] = {}


def source(tmp_path_factory: pytest.TempPathFactory, version: str, patch=None) -> Path:
    return versioned_source(tmp_path_factory.mktemp("src"), version, patch)


@pytest.fixture(scope="module")
def v1(inventory: str, node: testinfra.host.Host, tmp_path_factory: pytest.TempPathFactory) -> str:
    ok(deploy(inventory, source(tmp_path_factory, "1.0.0")))
    IDS["1.0.0"] = live_record(node)["id"]
    return IDS["1.0.0"]


@pytest.fixture(scope="module")
def load(v1: str):
    """From v1 on, two threads GET /version through Nginx until the last test stops them."""
    loop = LoadLoop([HTTP_PORT]).start()
    yield loop
    loop.stop()


def test_first_deploy_over_ssh_serves_v1(v1: str, load: LoadLoop) -> None:
    answer = served()
    assert (answer["version"], answer["release"]) == ("1.0.0", v1)


def test_v2_replaces_v1(load: LoadLoop, inventory: str, node, tmp_path_factory) -> None:
    ok(deploy(inventory, source(tmp_path_factory, "2.0.0")))
    record = live_record(node)
    IDS["2.0.0"] = record["id"]
    assert record["previous"] == IDS["1.0.0"]
    answer = served()
    assert (answer["version"], answer["release"]) == ("2.0.0", IDS["2.0.0"])


def test_fab_rollback_serves_the_previous_release_from_the_warm_slot(load, inventory, node) -> None:
    out = ok(fab(inventory, "rollback"))
    assert out.startswith(f"{HOST}: rollback: {IDS['2.0.0']} -> {IDS['1.0.0']}"), out
    assert served()["release"] == IDS["1.0.0"]
    last = audit(node)[-1]
    assert (last["action"], last["outcome"], last["warm"]) == ("rollback", "success", True)
    assert (last["from"], last["to"], last["by"]) == (IDS["2.0.0"], IDS["1.0.0"], getpass.getuser())


def test_fab_releases_shows_which_is_live_and_which_is_warm(load, inventory) -> None:
    rows = {line.split()[0]: line.split() for line in ok(fab(inventory, "releases")).splitlines()[2:]}
    assert rows[IDS["1.0.0"]][1] == "1.0.0" and "live" in rows[IDS["1.0.0"]]
    assert rows[IDS["2.0.0"]][1] == "2.0.0" and "warm" in rows[IDS["2.0.0"]]


def test_fab_rollback_to_a_named_release(load, inventory) -> None:
    out = ok(fab(inventory, "rollback", "--to", IDS["2.0.0"]))
    assert f"-> {IDS['2.0.0']}" in out
    answer = served()
    assert (answer["version"], answer["release"]) == ("2.0.0", IDS["2.0.0"])


def test_fab_status_reports_the_live_release(load, inventory, node) -> None:
    out = ok(fab(inventory, "status"))
    workers = 2 * int(node.check_output("nproc")) + 1
    slot = live_slot(node)
    expected = f"{HOST} ({APP}): release {IDS['2.0.0']} (2.0.0) in slot {slot}, {workers} workers, healthy"
    assert out.startswith(expected), out


def break_import(package: Path) -> None:
    init = package / "__init__.py"
    text = init.read_text()
    init.write_text(text.replace("import hashlib\n", "import hashlib\nimport gunship_no_such_module\n", 1))


def test_a_v3_that_does_not_import_is_refused(load, inventory, node, tmp_path_factory) -> None:
    out = refused(deploy(inventory, source(tmp_path_factory, "3.0.0", break_import)))
    assert "does not import in this release" in out and "gunship_no_such_module" in out
    assert f"release {IDS['2.0.0']} is still live" in out
    assert live_record(node)["id"] == IDS["2.0.0"]
    assert served()["release"] == IDS["2.0.0"]
    assert "3.0.0" not in release_versions(node).values()
    assert not node.file(f"{ROOT}/deploy.lock").exists


def test_a_v4_failing_its_health_check_is_refused(load, inventory, node, tmp_path_factory) -> None:
    out = refused(deploy(inventory, source(tmp_path_factory, "4.0.0", fail_health)))
    assert "did not pass the health check: GET /healthz" in out and "503" in out
    assert served()["release"] == IDS["2.0.0"]
    assert "4.0.0" not in release_versions(node).values()
    last = audit(node)[-1]
    assert (last["action"], last["outcome"], last["from"]) == ("deploy", "failed", IDS["2.0.0"])
    IDS["4.0.0"] = last["to"]
    assert not node.file(f"{ROOT}/deploy.lock").exists


def test_rollback_never_picks_a_failed_release(load, inventory) -> None:
    # The last release to reach the host was v4, before it v3: the one to go back to is v1.
    out = ok(fab(inventory, "rollback", "--dry"))
    assert f"would start {IDS['1.0.0']}" in out, out
    assert served()["release"] == IDS["2.0.0"]  # --dry changed nothing
    out = refused(fab(inventory, "rollback", "--to", IDS["4.0.0"]))
    assert f"cannot roll back to {IDS['4.0.0']!r}: not on this host" in out
    assert served()["release"] == IDS["2.0.0"]


def test_the_rollback_playbook_goes_to_the_previous_release(load, inventory, node) -> None:
    ok(run_playbook("rollback.yml", inventory))
    assert served()["release"] == IDS["1.0.0"]
    assert audit(node)[-1]["action"] == "rollback"


def test_the_rollback_playbook_refuses_a_release_that_is_not_there(load, inventory) -> None:
    out = refused(run_playbook("rollback.yml", inventory, "-e", "rollback_to=19990101T000000Z"))
    assert "cannot roll back to '19990101T000000Z': not on this host" in out
    assert served()["release"] == IDS["1.0.0"]


def test_of_two_deploys_at_once_the_second_fails_on_the_lock(load, inventory, node, tmp_path_factory) -> None:
    v5 = source(tmp_path_factory, "5.0.0")
    results: dict[str, subprocess.CompletedProcess[str]] = {}
    first = threading.Thread(target=lambda: results.setdefault("first", deploy(inventory, v5)))
    first.start()
    lock = node.file(f"{ROOT}/deploy.lock")
    deadline = time.monotonic() + 300
    while not lock.exists and first.is_alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert lock.exists, "the first deploy never took the lock"
    second = refused(deploy(inventory, v5))
    second_done_while_first_ran = first.is_alive()
    first.join()
    assert f"{APP} is locked by {getpass.getuser()}@" in second
    ok(results["first"])
    assert second_done_while_first_ran  # it failed at once, not after waiting for the lock
    assert served()["version"] == "5.0.0"
    assert not lock.exists


def test_fab_unlock_shows_and_clears_a_stale_lock(load, inventory, node) -> None:
    node.check_output(f"gunship-release {APP} lock --holder=alice@laptop")
    out = ok(fab(inventory, "unlock", "--dry"))
    assert out.startswith(f"{HOST}: is locked by alice@laptop since"), out
    assert node.file(f"{ROOT}/deploy.lock").exists
    out = ok(fab(inventory, "unlock"))
    assert out.startswith(f"{HOST}: was locked by alice@laptop since"), out
    assert not node.file(f"{ROOT}/deploy.lock").exists


def workers(node: testinfra.host.Host) -> int:
    return json.loads(node.check_output(f"gunship-release {APP} status --json"))["workers"]


def test_fab_scale_adds_and_removes_workers_until_the_next_restart(load, inventory, node) -> None:
    before = workers(node)
    out = ok(fab(inventory, "scale", "--workers=+2"))
    assert "until the next restart" in out
    assert eventually(lambda: workers(node) == before + 2), workers(node)
    ok(fab(inventory, "scale", "--workers=-2"))
    assert eventually(lambda: workers(node) == before), workers(node)


def test_not_one_request_failed_through_all_of_it(load: LoadLoop) -> None:
    load.stop()
    assert load.failures == [], f"{len(load.failures)} of {load.requests} failed: {load.failures[:10]}"
    assert {"1.0.0", "2.0.0", "5.0.0"} <= set(load.versions), load.versions
    assert not {"3.0.0", "4.0.0"} & set(load.versions)  # refused releases never served a request
