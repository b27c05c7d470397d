"""What the default scenario's tests share: the hosts, HTTP through their published ports,
deploys with the real playbook, and a fingerprint of everything a deploy manages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import testinfra

# The kit the scenarios share lives beside them, in molecule/shared.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
from gunship_testkit import (
    ALL_SLOTS,
    APP,
    PROJECT,
    ROOT,
    Answer,
    eventually,
    fetch_port,
    fingerprint,
    live_record,
    live_slot,
    live_unit,
    master_pid,
    playbook,
    release_versions,
    versioned_source,
    worker_pids,
)

__all__ = [
    "ALL_SLOTS",
    "APP",
    "PROJECT",
    "ROOT",
    "eventually",
    "fingerprint",
    "live_record",
    "live_slot",
    "live_unit",
    "master_pid",
    "release_versions",
    "versioned_source",
    "worker_pids",
]

# Container name -> the loopback port its Nginx is published on (molecule.yml).
PORTS = {"gunship-default-bookworm": 18081, "gunship-default-trixie": 18082}
HOSTS = [f"podman://{name}" for name in PORTS]


def fetch(container: str, path: str, host_header: str = "localhost") -> Answer:
    return fetch_port(PORTS[container], path, host_header)


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
    return playbook(
        "deploy.yml", os.environ["MOLECULE_INVENTORY_FILE"], *args, *(["--limit", limit] if limit else [])
    )


def journal(host: testinfra.host.Host, unit: str, lines: int = 40) -> str:
    return host.run(f"journalctl -u {unit} -n {lines} --no-pager").stdout
