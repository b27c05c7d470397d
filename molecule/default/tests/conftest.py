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
    APP,
    PROJECT,
    ROOT,
    SUPERVISOR,
    Answer,
    app_log_mark,
    app_log_since,
    eventually,
    fetch_port,
    fingerprint,
    journal,
    live_record,
    live_slot,
    live_unit,
    master_pid,
    playbook,
    release_versions,
    restart_slot,
    slot_name,
    slot_running,
    versioned_source,
    worker_pids,
)

__all__ = [
    "APP",
    "PROJECT",
    "ROOT",
    "SUPERVISOR",
    "app_log_mark",
    "app_log_since",
    "eventually",
    "fingerprint",
    "journal",
    "live_record",
    "live_slot",
    "live_unit",
    "master_pid",
    "release_versions",
    "restart_slot",
    "slot_name",
    "slot_running",
    "versioned_source",
    "worker_pids",
]


def hosts_from_env(spec: str) -> dict[str, tuple[int, int]]:
    """GUNSHIP_TEST_HOSTS="NAME=HTTP:HTTPS,...": containers of one's own (already deployed, with
    the scenario's settings, Nginx published on those loopback ports) instead of the scenario's,
    for running a test module against them without molecule; MOLECULE_INVENTORY_FILE names their
    inventory (GUNSHIP_PROCESS_MANAGER=supervisor when they run under supervisor,
    GUNSHIP_APP_SERVER=uwsgi when uWSGI serves them):

        GUNSHIP_TEST_HOSTS=mybox=18191:18446 MOLECULE_INVENTORY_FILE=/tmp/inv \
            .venv/bin/pytest molecule/default/tests/test_bad_input.py
    """
    hosts = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, ports = item.partition("=")
        http, _, https = ports.partition(":")
        hosts[name] = (int(http), int(https or 0))
    return hosts


# These tests also verify the supervisor, uwsgi and uwsgi-supervisor scenarios (their
# molecule.yml points here). Container
# name -> the loopback ports its Nginx is published on (HTTP, HTTPS), per scenario.
SCENARIO_PORTS = (
    hosts_from_env(os.environ.get("GUNSHIP_TEST_HOSTS", ""))
    or {
        "default": {"gunship-default-bookworm": (18081, 18443), "gunship-default-trixie": (18082, 18444)},
        "supervisor": {"gunship-supervisor-trixie": (18083, 18445)},
        "uwsgi": {"gunship-uwsgi-trixie": (18084, 18446)},
        "uwsgi-supervisor": {"gunship-uwsgi-supervisor-trixie": (18085, 18447)},
    }[os.environ.get("MOLECULE_SCENARIO_NAME", "default")]
)
PORTS = {name: http for name, (http, _) in SCENARIO_PORTS.items()}
TLS_PORTS = {name: https for name, (_, https) in SCENARIO_PORTS.items()}
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
