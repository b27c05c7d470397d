"""fab reads the same inventories Ansible does: hosts, users, ports, keys and app_name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from invoke.exceptions import Exit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import fabfile

PROJECT = Path(__file__).resolve().parents[1]


def test_hosts_come_from_the_app_group_with_their_connection_vars() -> None:
    inventory = {
        "_meta": {
            "hostvars": {
                "app1.example.com": {
                    "app_name": "shop",
                    "ansible_user": "deploy",
                    "ansible_port": 2222,
                    "ansible_ssh_private_key_file": "~/.ssh/deploy",
                },
                "app2": {"app_name": "shop", "ansible_host": "10.0.0.2"},
                "db1": {"app_name": "shop"},
            }
        },
        "app": {"hosts": ["app1.example.com"], "children": ["app_eu"]},
        "app_eu": {"hosts": ["app2"]},
        "db": {"hosts": ["db1"]},
    }
    targets = fabfile.inventory_targets(inventory)
    assert [(t.name, t.address, t.user, t.port, t.key) for t in targets] == [
        ("app1.example.com", "app1.example.com", "deploy", 2222, "~/.ssh/deploy"),
        ("app2", "10.0.0.2", None, None, None),
    ]


def test_a_host_without_app_name_is_refused() -> None:
    inventory = {"_meta": {"hostvars": {"h": {}}}, "app": {"hosts": ["h"]}}
    with pytest.raises(Exit, match="app_name is not set"):
        fabfile.inventory_targets(inventory)


def test_the_prod_example_inventory_reads_as_ansible_reads_it() -> None:
    targets = fabfile.load_targets("inventories/prod", None)
    assert [(t.name, t.user, t.app) for t in targets] == [("app1.example.com", "deploy", "shop")]


def test_an_unknown_host_filter_is_refused() -> None:
    with pytest.raises(Exit, match="--host 'nope' is not in group 'app'"):
        fabfile.load_targets("inventories/prod", "nope")


def test_fab_lists_the_day_two_tasks() -> None:
    listing = subprocess.run(
        [Path(sys.executable).with_name("fab"), "--list"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for name in ("rollback", "releases", "status", "scale", "unlock"):
        assert name in listing
