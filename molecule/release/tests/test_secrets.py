"""Secrets from Ansible Vault, after the release story: the app gets the value, and nobody
else does. Not the deploy's output (even at -vv), not release.json, the audit log, fab's
output or its cache, not any file on the host that other users can read. A rotated secret
reaches the app through the same gated swap; a deploy run without the vault password stops
before the host changes."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from pathlib import Path

import pytest
import testinfra
from conftest import SECRET, app_environment, deploy, fab, fetch
from gunship_testkit import (
    APP,
    ROOT,
    live_record,
    playbook,
    readable_by_others,
    release_versions,
    vault_encrypt,
    vault_file,
    vault_password_file,
    versioned_source,
)

ROTATED = f"rotated-{secrets.token_hex(12)}"
NAME = "GUNSHIP_SECRET_TOKEN"


@pytest.fixture(scope="module")
def rotated(inventory: str, node: testinfra.host.Host, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The same release deployed again at -vv with a new secret in the vault."""
    before = live_record(node)
    password = vault_password_file(Path(inventory))
    vaulted = vault_encrypt(password, f"vault_{NAME.lower()}", ROTATED)
    vault_file(Path(inventory)).write_text("---\n" + vaulted)
    source = versioned_source(tmp_path_factory.mktemp("src"), before["version"])
    run = deploy(inventory, source, "-vv")
    return {"before": before, "run": run, "output": run.stdout + run.stderr}


def test_the_app_gets_the_secret_from_the_vault(node: testinfra.host.Host) -> None:
    assert app_environment(node)[NAME] == SECRET


def test_a_rotated_secret_reaches_the_app_through_a_gated_swap(rotated: dict, node) -> None:
    assert rotated["run"].returncode == 0, rotated["output"]
    assert app_environment(node)[NAME] == ROTATED
    after = live_record(node)
    assert after["version"] == rotated["before"]["version"]
    assert fetch("/version").json()["version"] == after["version"]


def test_the_deploy_output_never_shows_a_secret(rotated: dict) -> None:
    assert "PLAY RECAP" in rotated["output"]
    assert ROTATED not in rotated["output"]
    assert SECRET not in rotated["output"]


def test_no_world_readable_file_on_the_host_holds_a_secret(rotated: dict, node) -> None:
    assert readable_by_others(node, ROTATED) == []
    assert readable_by_others(node, SECRET) == []
    env = node.file(f"{ROOT}/shared/env")
    assert (env.mode, env.user, env.group) == (0o640, "root", APP)
    with node.sudo():
        assert ROTATED in env.content_string  # where the secret does live, for the app's group only
        for path in (f"{ROOT}/current/release.json", f"{ROOT}/audit.log"):
            assert ROTATED not in node.file(path).content_string, path


def test_fab_shows_no_secret(rotated: dict, inventory: str) -> None:
    runs = [fab(inventory, "status"), fab(inventory, "releases")]
    for run in runs:
        assert run.returncode == 0, run.stderr
        assert ROTATED not in run.stdout + run.stderr
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gunship"
    for file in (p for p in cache.rglob("*") if p.is_file()):
        assert ROTATED not in file.read_text(errors="replace"), file


def test_without_the_vault_password_a_deploy_stops_before_the_host_changes(
    rotated: dict, inventory: str, node, tmp_path_factory
) -> None:
    before = live_record(node)
    releases = release_versions(node)
    source = versioned_source(tmp_path_factory.mktemp("src"), "6.0.0")
    run: subprocess.CompletedProcess[str] = playbook(
        "deploy.yml", inventory, "--extra-vars", json.dumps({"app_source": str(source)})
    )
    out = run.stdout + run.stderr
    assert run.returncode != 0, out
    assert "app_env" in out and "--vault-password-file" in out, out
    assert live_record(node) == before
    assert release_versions(node) == releases
    assert node.run(f"test -e {ROOT}/shared/deploy.lock").rc != 0
    assert fetch("/version").json()["version"] == before["version"]
