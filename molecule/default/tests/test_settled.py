"""A deploy with nothing new: a host as the last deploy with the same inputs left it (settled)
is left alone, and one changed by hand since then is put back as that deploy left it."""

from __future__ import annotations

import re

import pytest
import testinfra
from conftest import PORTS, SUPERVISOR, deploy, fetch, fingerprint, live_unit

SITE = "/etc/nginx/sites-available/gunship-example.conf"
FIRST = next(iter(PORTS))


def settled_hosts(output: str) -> set[str]:
    return set(re.findall(r"(\w[\w.-]*)\s+is\s+as\s+the\s+last\s+deploy", output))


def recap_changes(output: str) -> dict[str, int]:
    return {
        name: int(n) for name, n in re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", output, re.MULTILINE)
    }


@pytest.fixture(scope="module")
def nodes() -> dict[str, testinfra.host.Host]:
    # The modules before this one deployed with other settings: this deploy settles every host.
    run = deploy()
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    return {name: testinfra.get_host(f"podman://{name}") for name in PORTS}


def test_a_redeploy_with_nothing_new_leaves_every_host_alone(nodes) -> None:
    before = {name: fingerprint(node) for name, node in nodes.items()}
    run = deploy()
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    assert settled_hosts(output) == set(PORTS), output[-3000:]
    assert set(recap_changes(output).values()) == {0}, output[-1500:]
    assert {name: fingerprint(node) for name, node in nodes.items()} == before


def test_a_file_changed_by_hand_is_put_back_by_the_next_deploy(nodes) -> None:
    node = nodes[FIRST]
    original = node.file(SITE).content_string
    node.run_expect([0], f"echo '# changed by hand' >> {SITE}")
    run = deploy()
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    assert settled_hosts(output) == set(PORTS) - {FIRST}, output[-3000:]
    assert node.file(SITE).content_string == original
    assert fetch(FIRST, "/healthz").status == 200


def test_an_app_stopped_by_hand_is_serving_again_after_the_next_deploy(nodes) -> None:
    node = nodes[FIRST]
    unit = live_unit(node)
    stop = f"supervisorctl stop {unit}" if SUPERVISOR else f"systemctl stop {unit}.socket {unit}.service"
    node.run_expect([0], stop)
    assert fetch(FIRST, "/healthz").status == 502
    run = deploy()
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    assert FIRST not in settled_hosts(output)
    assert fetch(FIRST, "/healthz").status == 200
