"""fab reads the same inventories Ansible does: hosts, users, ports, keys and app_name."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from invoke import Context
from invoke.exceptions import Exit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "molecule" / "shared"))
from gunship_testkit import vault_encrypt

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


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(fabfile, "CACHE_DIR", tmp_path / "cache")
    return tmp_path / "cache"


def write_inventory(root: Path, address: str, extra: str = "") -> Path:
    (root / "group_vars").mkdir(parents=True, exist_ok=True)
    (root / "group_vars" / "app.yml").write_text(f"app_name: shop\n{extra}")
    (root / "hosts.yml").write_text(f"app:\n  hosts:\n    web1:\n      ansible_host: {address}\n")
    return root


def cached_text(cache_dir: Path) -> str:
    """Everything fab wrote to its inventory cache, as one text."""
    return "".join(p.read_text() for p in cache_dir.rglob("*") if p.is_file()) if cache_dir.exists() else ""


def vaulted_inventory(tmp_path: Path, become_password: str) -> tuple[Path, Path]:
    """An inventory whose ansible_become_password is vault-encrypted, and its vault password file."""
    password_file = tmp_path / "vault-password"
    password_file.write_text("correct horse battery staple\n")
    extra = vault_encrypt(password_file, "ansible_become_password", become_password)
    return write_inventory(tmp_path / "inv", "10.0.0.1", extra), password_file


def test_an_edited_inventory_is_read_again(tmp_path: Path, cache_dir: Path) -> None:
    inventory = write_inventory(tmp_path / "inv", "10.0.0.1")
    assert [t.address for t in fabfile.load_targets(str(inventory), None)] == ["10.0.0.1"]
    assert [t.address for t in fabfile.load_targets(str(inventory), None)] == ["10.0.0.1"]
    write_inventory(inventory, "10.0.0.22")
    assert [t.address for t in fabfile.load_targets(str(inventory), None)] == ["10.0.0.22"]
    (inventory / "group_vars" / "app.yml").write_text("app_name: shop-eu\n")
    assert [t.app for t in fabfile.load_targets(str(inventory), None)] == ["shop-eu"]


def test_a_dynamic_inventory_is_asked_every_time(tmp_path: Path, cache_dir: Path) -> None:
    source = tmp_path / "address"
    source.write_text("10.0.0.1")
    script = tmp_path / "inv.sh"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "{{\\"app\\": {{\\"hosts\\": [\\"web1\\"]}}, \\"_meta\\": {{\\"hostvars\\": '
        f'{{\\"web1\\": {{\\"app_name\\": \\"shop\\", \\"ansible_host\\": \\"$(cat {source})\\"}}}}}}}}"\n'
    )
    script.chmod(0o755)
    assert [t.address for t in fabfile.load_targets(str(script), None)] == ["10.0.0.1"]
    source.write_text("10.0.0.9")  # the cloud moved the host; the script's file did not change
    assert [t.address for t in fabfile.load_targets(str(script), None)] == ["10.0.0.9"]
    assert not cache_dir.exists()


def test_a_become_password_is_never_written_to_the_cache(tmp_path: Path, cache_dir: Path) -> None:
    inventory = write_inventory(tmp_path / "inv", "10.0.0.1", "ansible_become_password: hunter2-secret\n")
    assert [t.become_password for t in fabfile.load_targets(str(inventory), None)] == ["hunter2-secret"]
    assert "hunter2-secret" not in cached_text(cache_dir)


def test_a_vaulted_become_password_reaches_sudo_and_never_the_cache(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inventory, password_file = vaulted_inventory(tmp_path, "hunter2-vaulted")
    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", str(password_file))
    [target] = fabfile.load_targets(str(inventory), None)
    assert "hunter2-vaulted" not in json.dumps(target.become_password)  # still sealed in memory
    assert fabfile.connect(target).config.sudo.password == "hunter2-vaulted"
    assert "hunter2-vaulted" not in cached_text(cache_dir)


def test_a_vaulted_become_password_without_the_vault_password_is_refused_by_name(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inventory, _ = vaulted_inventory(tmp_path, "hunter2")
    monkeypatch.delenv("ANSIBLE_VAULT_PASSWORD_FILE", raising=False)
    [target] = fabfile.load_targets(str(inventory), None)
    with pytest.raises(
        Exit, match=r"web1: ansible_become_password is vault-encrypted.*ANSIBLE_VAULT_PASSWORD_FILE"
    ):
        fabfile.connect(target)


def podman_inventory(root: Path, podman: Path) -> Path:
    """An inventory like inventories/local: one container reached through the podman connection,
    with a stand-in podman that records its arguments and answers as gunship-release would."""
    (root / "group_vars").mkdir(parents=True, exist_ok=True)
    (root / "group_vars" / "app.yml").write_text("app_name: shop\n")
    (root / "hosts.yml").write_text(
        "app:\n  hosts:\n    shop-box:\n      ansible_connection: containers.podman.podman\n"
        f"      ansible_podman_executable: {podman}\n"
    )
    return root


def fake_podman(tmp_path: Path) -> tuple[Path, Path]:
    calls = tmp_path / "podman-calls"
    podman = tmp_path / "podman"
    podman.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$*" >> {calls}\n'
        """echo '{"was_locked": true, "holder": "ci@build1", "since": "20261121T153000Z"}'\n"""
    )
    podman.chmod(0o755)
    return podman, calls


def test_a_host_behind_the_podman_connection_is_reached_through_podman_exec(
    tmp_path: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    podman, calls = fake_podman(tmp_path)
    inventory = podman_inventory(tmp_path / "inv", podman)
    [target] = fabfile.load_targets(str(inventory), None)
    assert (target.name, target.address, target.connection) == ("shop-box", "shop-box", "podman")

    fabfile.unlock(Context(), inventory=str(inventory), dry=True)

    assert calls.read_text() == "exec shop-box gunship-release shop unlock --dry-run\n"
    assert capsys.readouterr().out == "shop-box: is locked by ci@build1 since 20261121T153000Z\n"


def test_the_sandbox_inventory_is_read_as_a_podman_host(cache_dir: Path) -> None:
    [target] = fabfile.load_targets("inventories/local", None)
    assert (target.name, target.connection) == ("gunship-demo", "podman")


def test_a_connection_fab_does_not_speak_is_refused_by_name() -> None:
    inventory = {
        "_meta": {"hostvars": {"box": {"app_name": "shop", "ansible_connection": "community.docker.docker"}}},
        "app": {"hosts": ["box"]},
    }
    with pytest.raises(
        Exit, match=r"box uses the community\.docker\.docker connection: fab reaches hosts over SSH"
    ):
        fabfile.inventory_targets(inventory)


def test_fab_logs_prefixes_whole_lines_whatever_the_chunks() -> None:
    """Output arrives in chunks that split lines (and each chunk is flushed): each line is
    printed once, whole, after its host."""
    import io
    import threading

    out = io.StringIO()
    prefixed = fabfile.Prefixed("web1  ", out, threading.Lock())
    for chunk in ("app   first li", "ne\r\nnginx-acce", "ss second\nthird"):
        prefixed.write(chunk)
        prefixed.flush()
    prefixed.finish()
    assert out.getvalue() == "web1  app   first line\nweb1  nginx-access second\nweb1  third\n"


def test_fab_exec_takes_everything_after_the_first_double_dash() -> None:
    argv = ["fab", "exec", "--host", "web1", "--", "sh", "-c", "echo 'a b' -- c"]
    assert fabfile.command_after_dashes(argv) == ["sh", "-c", "echo 'a b' -- c"]
    assert fabfile.command_after_dashes(["fab", "exec"]) == []


def test_fab_exec_without_a_command_says_how_to_give_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["fab", "exec"])
    with pytest.raises(Exit, match="needs a command after --"):
        fabfile.exec_(Context())


def test_fab_exec_passes_the_text_after_double_dash_to_the_task_not_to_fabric() -> None:
    """Fabric runs text after `--` as a shell command of its own on -H hosts (and refuses it
    without hosts); fabric.yaml's executor leaves it to `fab exec`, which reads the inventory."""
    run = subprocess.run(
        [str(Path(sys.executable).with_name("fab")), "exec", "--inventory", "/nonexistent", "--", "true"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode != 0
    assert "Was told to run a command" not in run.stderr
    assert "no hosts in group" in run.stderr  # the task ran, and read the inventory
