"""The release cycle users rely on: a deploy under load fails no request, a rollback is one
command, a release that fails its health check never receives traffic, and two deploys
never run at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest
import testinfra
from conftest import PORTS, PROJECT, ROOT, deploy, fetch, live_record
from test_release_cycle import versioned_source


@pytest.fixture(scope="module")
def nodes() -> dict[str, testinfra.host.Host]:
    return {name: testinfra.get_host(f"podman://{name}") for name in PORTS}


class LoadLoop:
    """Bounded GET /version traffic from the host on loopback, counting what comes back."""

    def __init__(self, seconds_max: float = 600) -> None:
        self.deadline = time.monotonic() + seconds_max
        self.stopped = threading.Event()
        self.versions: Counter[str] = Counter()
        self.failures: list[str] = []
        self.threads = [threading.Thread(target=self.run, args=(name,)) for name in PORTS for _ in range(2)]

    def run(self, name: str) -> None:
        while not self.stopped.is_set() and time.monotonic() < self.deadline:
            try:
                answer = fetch(name, "/version")
                if answer.status == 200:
                    self.versions[answer.json()["version"]] += 1
                else:
                    self.failures.append(f"{name}: HTTP {answer.status}")
            except OSError as error:
                self.failures.append(f"{name}: {error}")

    def __enter__(self) -> LoadLoop:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        for thread in self.threads:
            thread.join()


def rollback(*args: str) -> subprocess.CompletedProcess[str]:
    playbook = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    env = {**os.environ, "ANSIBLE_ROLES_PATH": str(PROJECT / "roles"), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run(
        [playbook, "playbooks/rollback.yml", "-i", os.environ["MOLECULE_INVENTORY_FILE"], *args],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def audit(node: testinfra.host.Host) -> list[dict]:
    return [json.loads(line) for line in node.file(f"{ROOT}/audit.log").content_string.splitlines()]


@pytest.fixture(scope="module")
def under_load(nodes, tmp_path_factory):
    before = {name: live_record(node) for name, node in nodes.items()}
    source = versioned_source(tmp_path_factory.mktemp("src"), "3.0.0")
    with LoadLoop() as load:
        time.sleep(1)
        run = deploy("--extra-vars", json.dumps({"app_source": str(source)}))
        time.sleep(1)
    assert run.returncode == 0, run.stdout + run.stderr
    return before, load


def test_a_deploy_under_load_fails_no_request(under_load) -> None:
    before, load = under_load
    assert load.failures == []
    assert load.versions["3.0.0"] > 0
    assert sum(load.versions[r["version"]] for r in before.values()) > 0


def test_rollback_serves_the_previous_release_from_the_warm_slot(under_load, nodes) -> None:
    before, _ = under_load
    run = rollback()
    assert run.returncode == 0, run.stdout + run.stderr
    for name, node in nodes.items():
        assert fetch(name, "/version").json()["release"] == before[name]["id"]
        last = audit(node)[-1]
        assert (last["action"], last["outcome"], last["warm"]) == ("rollback", "success", True)


def test_rollback_to_a_named_release(under_load, nodes) -> None:
    # The release the rollback above left: 3.0.0, named by its id.
    target = audit(next(iter(nodes.values())))[-1]["from"]
    run = rollback("-e", f"rollback_to={target}")
    assert run.returncode == 0, run.stdout + run.stderr
    for name in nodes:
        served = fetch(name, "/version").json()
        assert (served["release"], served["version"]) == (target, "3.0.0")


def test_rollback_refuses_a_release_that_is_not_there(nodes) -> None:
    run = rollback("-e", "rollback_to=19990101T000000Z")
    assert run.returncode != 0
    assert "cannot roll back to '19990101T000000Z': not on this host" in run.stdout + run.stderr


def test_a_release_failing_its_health_check_never_serves(nodes, tmp_path_factory) -> None:
    live = {name: live_record(node) for name, node in nodes.items()}
    source = versioned_source(tmp_path_factory.mktemp("src"), "3.1.0")
    run = deploy("--extra-vars", json.dumps({"app_source": str(source), "app_health_path": "/no-such-check"}))
    output = run.stdout + run.stderr
    assert run.returncode != 0
    assert "did not pass the health check: GET /no-such-check" in output
    for name, node in nodes.items():
        assert live_record(node)["id"] == live[name]["id"]
        assert fetch(name, "/version").json()["release"] == live[name]["id"]
        versions = {
            json.loads(node.file(f"{d}/release.json").content_string)["version"]
            for d in node.check_output(f"ls -d {ROOT}/releases/*").split()
        }
        assert "3.1.0" not in versions
        assert audit(node)[-1]["outcome"] == "failed"


def test_a_second_deploy_fails_at_once_on_the_lock(nodes) -> None:
    for node in nodes.values():
        node.check_output("gunship-release gunship-example lock --holder=alice@laptop")
    try:
        run = deploy()
        output = run.stdout + run.stderr
        assert run.returncode != 0
        assert "gunship-example is locked by alice@laptop since" in output
        for node in nodes.values():  # the refused run left alice's lock alone
            assert "alice@laptop" in node.file(f"{ROOT}/deploy.lock").content_string
    finally:
        for node in nodes.values():
            node.run("gunship-release gunship-example unlock")
