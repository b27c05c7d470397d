"""What the release scenario's tests share: an ordinary SSH inventory for the container (as a
user writes one), deploys and rollbacks with the real playbooks over SSH, and `fab`."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import testinfra

# The kit the scenarios share lives beside them, in molecule/shared.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
from gunship_testkit import (
    Answer,
    fab,
    fetch_port,
    master_pid,
    playbook,
    ssh_inventory,
    vault_password_file,
)

__all__ = ["fab"]

CONTAINER = "gunship-release-trixie"
HTTP_PORT = 18091  # molecule.yml publishes the container's 80 and 22 on loopback
SSH_PORT = 18022
HOST = "web1"  # the container's name in the tests' own inventory


def fetch(path: str) -> Answer:
    return fetch_port(HTTP_PORT, path)


def served() -> dict:
    answer = fetch("/version")
    assert answer.status == 200, answer.body
    return answer.json()


def ok(run: subprocess.CompletedProcess[str]) -> str:
    assert run.returncode == 0, f"exit {run.returncode}\n{run.stdout}\n{run.stderr}"
    return run.stdout


def refused(run: subprocess.CompletedProcess[str]) -> str:
    assert run.returncode != 0, f"expected a failure\n{run.stdout}\n{run.stderr}"
    return run.stdout + run.stderr


def app_environment(node: testinfra.host.Host) -> dict[str, str]:
    """The environment of the live slot's Gunicorn master, as the app's code sees it."""
    pid = master_pid(node)
    with node.sudo():
        raw = node.check_output(f"tr '\\0' '\\n' < /proc/{pid}/environ")
    return dict(line.split("=", 1) for line in raw.splitlines() if "=" in line)


@pytest.fixture(scope="session")
def node() -> testinfra.host.Host:
    return testinfra.get_host(f"podman://{CONTAINER}")


# A secret the app gets from Ansible Vault; new for each run, so no stale copy can match.
SECRET = f"vaulted-{secrets.token_hex(12)}"


@pytest.fixture(scope="session")
def inventory(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An inventory directory that reaches the container over SSH as the deploy user, with
    the app's secret in Ansible Vault and the vault password in a file beside it."""
    key = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "id_ed25519"
    root = tmp_path_factory.mktemp("inventory")
    return str(ssh_inventory(root, HOST, SSH_PORT, key, secrets={"GUNSHIP_SECRET_TOKEN": SECRET}))


def run_playbook(name: str, inventory: str, *args: str) -> subprocess.CompletedProcess[str]:
    """playbooks/<name> with the inventory's vault password file, as the README's flow runs it."""
    password = vault_password_file(Path(inventory))
    return playbook(name, inventory, "--vault-password-file", str(password), *args)


def deploy(inventory: str, source: Path, *args: str, **extra: object) -> subprocess.CompletedProcess[str]:
    extra_vars = json.dumps({"app_source": str(source), **extra})
    return run_playbook("deploy.yml", inventory, "--extra-vars", extra_vars, *args)
