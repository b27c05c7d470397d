"""A load balancer in front of two app hosts, as a user of the cluster sees it: every request
through the balancer is answered, by either host; a rolling deploy stages the release on both
hosts, then switches one host at a time without failing a request, and runs its hooks in order,
a run_once hook (a migration) on the first host only; a host whose Gunicorn stops costs no
request; a release that fails staging on one host switches no host; a release that fails its
gate on the first host never reaches the second, which withdraws it; `fab` rolls back every app
host in turn, or acts on one; with app_tls_acme, the balancer obtains the certificate and
serves HTTPS. The tests build on each other, in file order."""

from __future__ import annotations

import http.client
import json
import os
import secrets
from collections import Counter
from pathlib import Path

import pytest
from conftest import APP_HOSTS, APP_PORTS, LB, LB_HTTPS_PORT, LB_PORT, deploy, through_lb
from gunship_testkit import (
    APP,
    UNIT,
    LoadLoop,
    eventually,
    fab,
    fail_health,
    fetch_https,
    fetch_port,
    live_record,
    live_slot,
    pebble_root,
    release_versions,
    versioned_source,
)

testinfra_hosts = [f"podman://{name}" for name in (LB, *APP_HOSTS)]


def served_by(count: int = 20) -> Counter[str]:
    """Which app host answered each of `count` requests through the load balancer."""
    hosts: Counter[str] = Counter()
    for _ in range(count):
        answer = through_lb()
        assert answer.status == 200, answer.body
        hosts[answer.json()["host"]] += 1
    return hosts


def tail(run) -> str:
    return (run.stdout + run.stderr)[-3000:]


def switch_batches(run) -> int:
    """How many batches the switch play ran: Ansible names the play once per batch."""
    return run.stdout.count("PLAY [Switch to the release in batches]")


def balancers_configured(run) -> bool:
    """Whether the load balancers' play went on to configure Nginx (after a failed rollout it
    ends at its first task)."""
    _, found, after = run.stdout.partition("PLAY [Configure the load balancers]")
    return bool(found) and "TASK [nginx" in after.partition("PLAY [")[0]


def unlocked(node) -> bool:
    return not node.file("/srv/gunship-example/deploy.lock").exists


def test_requests_through_the_load_balancer_reach_both_app_hosts() -> None:
    assert set(served_by()) == set(APP_HOSTS)


def test_app_hosts_refuse_everyone_but_the_load_balancer(apps) -> None:
    for name in APP_HOSTS:
        assert fetch_port(APP_PORTS[name], "/version").status == 403


def test_app_hosts_log_the_client_not_the_load_balancer(lb, apps) -> None:
    marker = secrets.token_hex(8)
    for _ in range(4):  # round robin: both app hosts get one
        assert through_lb(f"/version?probe={marker}").status == 200
    lb_address = lb.check_output("hostname -I").split()[0]
    log = f"/var/log/nginx/{APP}.access.log"
    client = lb.check_output(f"grep -h {marker} {log} | head -1").split()[0]
    assert client != lb_address
    for node in apps.values():
        logged = node.check_output(f"grep -h {marker} {log} | cut -d' ' -f1 | sort -u")
        assert logged == client


def test_each_answer_carries_the_security_headers_once() -> None:
    connection = http.client.HTTPConnection("127.0.0.1", LB_PORT, timeout=15)
    try:
        connection.request("GET", "/", headers={"Host": "localhost"})
        response = connection.getresponse()
        response.read()
        names = Counter(name.lower() for name, _ in response.getheaders())
    finally:
        connection.close()
    assert response.status == 200
    # The app hosts add them, and so does the balancer (for its own answers): one copy each.
    for header in ("x-frame-options", "x-content-type-options", "referrer-policy", "content-security-policy"):
        assert names[header] == 1, header


@pytest.fixture(scope="module")
def v2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return versioned_source(tmp_path_factory.mktemp("v2"), "2.0.0")


# Each hook of the rolling deploy appends its name to this file on the host it runs on.
HOOK_LOG = f"/tmp/gunship-hooks-{secrets.token_hex(6)}.log"


def hook(name: str, **options: object) -> dict[str, object]:
    return {"name": name, "command": f"echo {name} >> {HOOK_LOG}", **options}


HOOKS = {
    "release_hooks_before_switch": [hook("migrate", run_once=True), hook("collect")],
    "release_hooks_after_switch": [hook("warm")],
}


def test_a_rolling_deploy_moves_one_host_at_a_time_and_fails_no_request(apps, inventory, v2) -> None:
    before = {name: live_record(node)["version"] for name, node in apps.items()}
    assert len(set(before.values())) == 1
    with LoadLoop([LB_PORT], threads_per_port=4) as load:
        run = deploy(inventory, "--extra-vars", json.dumps({"app_source": str(v2), **HOOKS}))
    assert run.returncode == 0, tail(run)
    assert load.failures == [], load.failures[:10]
    assert run.stdout.count("PLAY [Stage the release on every app host]") == 1
    assert switch_batches(run) == len(APP_HOSTS)
    # While the second host still ran the old release, the first already served the new one.
    assert load.versions[before[APP_HOSTS[0]]] > 0 and load.versions["2.0.0"] > 0
    records = [live_record(node) for node in apps.values()]
    assert {record["version"] for record in records} == {"2.0.0"}
    assert len({record["id"] for record in records}) == 1  # the same release id everywhere
    assert set(served_by()) == set(APP_HOSTS)


def test_the_rolling_deploys_hooks_ran_in_order_and_a_run_once_hook_on_the_first_host_only(apps) -> None:
    ran = {name: node.file(HOOK_LOG).content_string.split() for name, node in apps.items()}
    first, second = APP_HOSTS
    assert ran == {first: ["migrate", "collect", "warm"], second: ["collect", "warm"]}


def test_with_one_app_hosts_gunicorn_stopped_every_request_is_answered(apps) -> None:
    first, second = APP_HOSTS
    node = apps[first]
    slot = live_slot(node)
    units = f"{UNIT}@{slot}.socket {UNIT}@{slot}.service"
    node.check_output(f"systemctl stop {units}")
    try:
        assert served_by(40) == Counter({second: 40})
    finally:
        node.check_output(f"systemctl start {units}")
    # Back in the rotation once its rest (fail_timeout) is over.
    assert eventually(lambda: first in served_by(4), seconds=40)


def test_a_release_failing_staging_on_one_host_switches_no_host(
    apps, inventory, tmp_path_factory: pytest.TempPathFactory
) -> None:
    second = APP_HOSTS[1]
    before = {name: live_record(node)["id"] for name, node in apps.items()}
    marker = f"/etc/gunship-test-refuse-{secrets.token_hex(4)}"
    apps[second].check_output(f"touch {marker}")  # the second host's hook fails, the first's passes
    refuse = {"release_hooks_before_switch": [{"name": "check", "command": f"test ! -e {marker}"}]}
    v3 = versioned_source(tmp_path_factory.mktemp("v3-staging"), "3.0.0")
    try:
        with LoadLoop([LB_PORT], threads_per_port=4) as load:
            run = deploy(inventory, "--extra-vars", json.dumps({"app_source": str(v3), **refuse}))
    finally:
        apps[second].check_output(f"rm -f {marker}")
    output = run.stdout + run.stderr
    assert run.returncode != 0
    assert f"staging failed on {second}" in output, tail(run)
    assert not balancers_configured(run)
    assert {name: live_record(node)["id"] for name, node in apps.items()} == before
    for name, node in apps.items():
        assert "3.0.0" not in release_versions(node).values(), name  # staged, then withdrawn
        assert unlocked(node), name
    assert load.failures == [], load.failures[:10]
    assert set(load.versions) == {"2.0.0"}


def test_a_release_failing_its_gate_on_the_first_host_never_reaches_the_second(
    apps, inventory, tmp_path_factory: pytest.TempPathFactory
) -> None:
    first = APP_HOSTS[0]
    before = {name: live_record(node)["id"] for name, node in apps.items()}
    v3 = versioned_source(tmp_path_factory.mktemp("v3"), "3.0.0", fail_health)
    with LoadLoop([LB_PORT], threads_per_port=4) as load:
        run = deploy(inventory, "--extra-vars", json.dumps({"app_source": str(v3)}))
    output = run.stdout + run.stderr
    assert run.returncode != 0
    assert "did not pass the health check" in output, tail(run)
    assert f"the rollout stopped at {first}" in output, tail(run)
    assert not balancers_configured(run)
    assert {name: live_record(node)["id"] for name, node in apps.items()} == before
    for name, node in apps.items():
        assert "3.0.0" not in release_versions(node).values(), name  # removed, or withdrawn unswitched
        assert unlocked(node), name
    assert load.failures == [], load.failures[:10]
    assert set(load.versions) == {"2.0.0"}


def test_fab_rolls_back_every_app_host_in_turn(apps, inventory) -> None:
    previous = {name: live_record(node)["previous"] for name, node in apps.items()}
    with LoadLoop([LB_PORT], threads_per_port=4) as load:
        run = fab(inventory, "rollback")
    assert run.returncode == 0, run.stdout + run.stderr
    assert [line.split(":")[0] for line in run.stdout.splitlines()] == APP_HOSTS
    assert {name: live_record(node)["id"] for name, node in apps.items()} == previous
    assert load.failures == [], load.failures[:10]


def test_fab_status_reports_every_app_host_or_the_one_asked_for(apps, inventory) -> None:
    every = fab(inventory, "status")
    assert every.returncode == 0, every.stderr
    assert [line.split(" ")[0] for line in every.stdout.splitlines()] == APP_HOSTS
    one = fab(inventory, "status", "--host", APP_HOSTS[1])
    assert one.returncode == 0, one.stderr
    [line] = one.stdout.splitlines()
    assert line.startswith(f"{APP_HOSTS[1]} ") and line in every.stdout.splitlines()
    assert f"release {live_record(apps[APP_HOSTS[1]])['id']} " in line


def test_with_acme_the_load_balancer_holds_the_certificate_and_serves_https(lb, apps, inventory) -> None:
    """app_tls_acme on a cluster: the load balancer (where Pebble, the ACME test server, runs
    and the site's name resolves) obtains the certificate and serves HTTPS with it, through to
    the app hosts, which stay plain HTTP with no certificate of their own."""
    name = "gunship-cluster.test"
    ephemeral = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
    settings = {
        "app_server_names": [name],
        "app_tls_acme": True,
        "app_tls_acme_directory": "https://localhost:14000/dir",
        "app_tls_acme_ca_certificate": (ephemeral / "pebble.crt").read_text(),
    }
    run = deploy(inventory, "-e", json.dumps(settings))
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    root = pebble_root(lb)
    served = Counter()
    for _ in range(10):
        answer = fetch_https(LB_HTTPS_PORT, "/version", name, root)
        assert answer.status == 200
        served[answer.json()["host"]] += 1
    assert len(served) == 2, served  # both app hosts, behind the balancer's HTTPS
    assert lb.service("certbot.timer").is_running
    for node in apps.values():
        assert not node.file(f"/etc/letsencrypt/live/{APP}").exists
        assert not node.package("certbot").is_installed
