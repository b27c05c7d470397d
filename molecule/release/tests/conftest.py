"""What the release scenario's tests share: an ordinary SSH inventory for the container (as a
user writes one), deploys and rollbacks with the real playbooks over SSH, and `fab`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import testinfra

# The kit the scenarios share lives beside them, in molecule/shared.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
from gunship_testkit import BIN, PROJECT, Answer, fetch_port, playbook, ssh_inventory

CONTAINER = "gunship-release-trixie"
HTTP_PORT = 18091  # molecule.yml publishes the container's 80 and 22 on loopback
SSH_PORT = 18022
HOST = "web1"  # the container's name in the tests' own inventory


def fetch(path: str) -> Answer:
    return fetch_port(HTTP_PORT, path)


@pytest.fixture(scope="session")
def node() -> testinfra.host.Host:
    return testinfra.get_host(f"podman://{CONTAINER}")


@pytest.fixture(scope="session")
def inventory(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An inventory directory that reaches the container over SSH as the deploy user."""
    key = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "id_ed25519"
    root = tmp_path_factory.mktemp("inventory")
    return str(ssh_inventory(root, HOST, SSH_PORT, key, app_env={"GUNSHIP_SECRET_TOKEN": "release-secret"}))


def deploy(inventory: str, source: Path, **extra: object) -> subprocess.CompletedProcess[str]:
    return playbook("deploy.yml", inventory, "--extra-vars", json.dumps({"app_source": str(source), **extra}))


def fab(inventory: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`fab TASK ARGS --inventory INV` from the project directory, as a user types it."""
    return subprocess.run(
        [str(BIN / "fab"), *args, "--inventory", inventory],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
