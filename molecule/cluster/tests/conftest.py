"""What the cluster scenario's tests share: the three containers, HTTP through the load
balancer's published port, an ordinary SSH inventory for the cluster (as a user writes one),
and deploys with the real playbook over SSH."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import testinfra

# The kit the scenarios share lives beside them, in molecule/shared.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
from gunship_testkit import Answer, cluster_inventory, fetch_port, playbook

LB = "gunship-cluster-lb"
APP_HOSTS = ["gunship-cluster-app1", "gunship-cluster-app2"]  # the order deploys take
LB_PORT = 18071  # molecule.yml publishes each container's port 80 on loopback
LB_HTTPS_PORT = 18078  # and the load balancer's 443
APP_PORTS = {"gunship-cluster-app1": 18072, "gunship-cluster-app2": 18073}
SSH_PORTS = {LB: 18075, "gunship-cluster-app1": 18076, "gunship-cluster-app2": 18077}


def through_lb(path: str = "/version") -> Answer:
    return fetch_port(LB_PORT, path)


def host(name: str) -> testinfra.host.Host:
    return testinfra.get_host(f"podman://{name}")


@pytest.fixture(scope="session")
def lb() -> testinfra.host.Host:
    return host(LB)


@pytest.fixture(scope="session")
def apps() -> dict[str, testinfra.host.Host]:
    return {name: host(name) for name in APP_HOSTS}


@pytest.fixture(scope="session")
def inventory(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The cluster over SSH: the same host names and settings as the scenario's own inventory,
    and the load balancer reaching the app hosts by name on the podman network."""
    ephemeral = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
    return str(
        cluster_inventory(
            tmp_path_factory.mktemp("inventory"),
            {name: SSH_PORTS[name] for name in APP_HOSTS},
            {LB: SSH_PORTS[LB]},
            ephemeral / "id_ed25519",
            backend_addresses={name: name for name in APP_HOSTS},
            app_lb_only=True,
            release_build_dir=str(ephemeral / "build"),  # the converge's wheelhouse, reused
        )
    )


def deploy(inventory: str, *args: str) -> subprocess.CompletedProcess[str]:
    """playbooks/deploy.yml against the cluster over SSH, as a user runs it."""
    return playbook("deploy.yml", inventory, *args)
