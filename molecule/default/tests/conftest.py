"""What the default scenario's tests share: the hosts, HTTP through their published ports,
deploys with the real playbook, and a fingerprint of everything a deploy manages."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import testinfra

APP = "gunship-example"
ROOT = f"/srv/{APP}"
UNIT = f"gunicorn-{APP}"  # a template: gunicorn-<app>@blue / @green
ALL_SLOTS = f"{UNIT}@*"  # a template: gunicorn-<app>@blue / @green
ALL_SLOTS = f"{UNIT}@*"
PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).parents[3]))

# Container name -> the loopback port its Nginx is published on (molecule.yml).
PORTS = {"gunship-default-bookworm": 18081, "gunship-default-trixie": 18082}
HOSTS = [f"podman://{name}" for name in PORTS]


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: str

    def json(self) -> dict:
        return json.loads(self.body)


def fetch(container: str, path: str, host_header: str = "localhost") -> Answer:
    connection = http.client.HTTPConnection("127.0.0.1", PORTS[container], timeout=15)
    try:
        connection.request("GET", path, headers={"Host": host_header})
        response = connection.getresponse()
        body = response.read().decode()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, body)
    finally:
        connection.close()


def container_of(host: testinfra.host.Host) -> str:
    return host.backend.name


@pytest.fixture(params=list(PORTS), ids=list(PORTS))
def container(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def node(container: str) -> testinfra.host.Host:
    return testinfra.get_host(f"podman://{container}")


def deploy(*args: str, limit: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run playbooks/deploy.yml against the scenario's containers, as a user would."""
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    # The ansible-playbook next to the interpreter running the tests: the project's venv.
    playbook = Path(sys.executable).with_name("ansible-playbook")
    command = [str(playbook), "playbooks/deploy.yml", "-i", inventory, *args]
    if limit:
        command += ["--limit", limit]
    env = {**os.environ, "ANSIBLE_ROLES_PATH": str(PROJECT / "roles"), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run(
        command, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=900, check=False
    )


def live_record(host: testinfra.host.Host) -> dict:
    return json.loads(host.file(f"{ROOT}/current/release.json").content_string)


# Everything a deploy manages, by content and metadata (not mtimes), and the units' states.
# The audit log is left out: recording a refused deploy is its job.
FINGERPRINT = rf"""
set -e
for path in /srv/{APP} /etc/gunship /etc/nginx /etc/systemd/system; do
  find "$path" -xdev \( -type f -o -type l -o -type d \) ! -name audit.log -printf '%p %y %l %m %u %g\n'
  find "$path" -xdev -type f ! -name audit.log -exec sha256sum {{}} +
done | sort
for slot in blue green; do
  systemctl is-active {UNIT}@$slot.socket {UNIT}@$slot.service || true
  systemctl show -p MainPID --value {UNIT}@$slot.service
done
systemctl is-active nginx || true
"""


def fingerprint(host: testinfra.host.Host) -> str:
    return host.check_output(FINGERPRINT)


def live_slot(host: testinfra.host.Host) -> str:
    # readlink, not File.linked_to: that resolves the slot's link on to the release.
    return host.check_output(f"readlink {ROOT}/slots/live")


def live_unit(host: testinfra.host.Host) -> str:
    return f"{UNIT}@{live_slot(host)}"


def journal(host: testinfra.host.Host, unit: str, lines: int = 40) -> str:
    return host.run(f"journalctl -u {unit} -n {lines} --no-pager").stdout
