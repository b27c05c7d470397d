"""gunship_files (plugins/modules), run as Ansible runs it: a process given its arguments as
JSON, against real files in a scratch directory. What a role's run would notice: what changed,
that a second run changes nothing, that a file failing its check never replaces the old one."""

from __future__ import annotations

import grp
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

MODULE = Path(__file__).resolve().parents[1] / "plugins" / "modules" / "gunship_files.py"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="sets owners: runs as root, as on a host")


def ensure(
    tmp_path: Path,
    files: list[dict[str, Any]],
    check: bool = False,
    diff: bool = False,
    manifest: Path | None = None,
) -> dict[str, Any]:
    args = tmp_path / "args.json"
    extra = {"manifest": str(manifest)} if manifest else {}
    args.write_text(
        json.dumps(
            {
                "ANSIBLE_MODULE_ARGS": {
                    "files": files,
                    "_ansible_check_mode": check,
                    "_ansible_diff": diff,
                    **extra,
                }
            }
        )
    )
    run = subprocess.run(
        [sys.executable, str(MODULE), str(args)], capture_output=True, text=True, check=False
    )
    return json.loads(run.stdout)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_a_second_run_changes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "app"
    files = [
        {"path": str(root), "state": "directory", "mode": "0755"},
        {
            "paths": [str(root / "data"), str(root / "media")],
            "state": "directory",
            "group": "adm",
            "mode": "2750",
        },
        {"path": str(root / "site.conf"), "content": "server {}\n", "mode": "0640"},
        {"path": str(root / "enabled.conf"), "state": "link", "src": str(root / "site.conf")},
    ]
    first = ensure(tmp_path, files)
    assert first["changed"] is True
    assert len(first["changed_paths"]) == 5
    assert (root / "site.conf").read_text() == "server {}\n"
    assert mode_of(root / "site.conf") == 0o640
    assert mode_of(root / "media") == 0o2750
    assert (root / "media").stat().st_gid == grp.getgrnam("adm").gr_gid
    assert os.readlink(root / "enabled.conf") == str(root / "site.conf")

    second = ensure(tmp_path, files)
    assert second["changed"] is False
    assert second["changed_paths"] == []


def test_a_directory_gets_its_missing_parents(tmp_path: Path) -> None:
    leaf = tmp_path / "usr" / "local" / "libexec" / "gunship"
    result = ensure(tmp_path, [{"path": str(leaf), "state": "directory", "mode": "0750"}])
    assert result["changed_paths"] == [str(leaf)]
    assert mode_of(leaf) == 0o750
    assert mode_of(leaf.parent) == 0o755


def test_only_what_differs_changes(tmp_path: Path) -> None:
    conf, other = tmp_path / "a.conf", tmp_path / "b.conf"
    files = [{"path": str(conf), "content": "one\n"}, {"path": str(other), "content": "two\n"}]
    ensure(tmp_path, files)
    conf.chmod(0o600)  # drifted by hand
    result = ensure(tmp_path, files)
    assert result["changed_paths"] == [str(conf)]
    assert mode_of(conf) == 0o644


def test_a_file_that_fails_its_check_leaves_the_old_one(tmp_path: Path) -> None:
    conf = tmp_path / "site.conf"
    conf.write_text("good\n")
    result = ensure(tmp_path, [{"path": str(conf), "content": "bad\n", "validate": "grep -q good %s"}])
    assert result["failed"] is True
    assert "failed its check" in result["msg"] and str(conf) in result["msg"]
    assert conf.read_text() == "good\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".site.conf")] == []


def test_check_mode_reports_and_writes_nothing(tmp_path: Path) -> None:
    conf = tmp_path / "site.conf"
    result = ensure(tmp_path, [{"path": str(conf), "content": "new\n"}], check=True, diff=True)
    assert result["changed"] is True
    assert result["diff"][0]["after"] == "new\n"
    assert not conf.exists()


def test_create_only_and_report_only(tmp_path: Path) -> None:
    upstream, unit = tmp_path / "upstream.conf", tmp_path / "app.service"
    upstream.write_text("server unix:/run/green.sock;\n")  # switched by the release cycle since
    files = [
        {"path": str(upstream), "content": "server unix:/run/blue.sock;\n", "create_only": True},
        {"path": str(unit), "content": "[Service]\n", "report_only": True},
    ]
    result = ensure(tmp_path, files)
    assert result["changed"] is False
    assert result["differs"] == [str(unit)]
    assert upstream.read_text() == "server unix:/run/green.sock;\n"
    assert not unit.exists()
    # A log file the web server created world-readable: its lines stay, its mode is made ours.
    log = tmp_path / "app.access.log"
    log.write_text("GET / 200\n")
    log.chmod(0o644)
    result = ensure(tmp_path, [{"path": str(log), "content": "", "create_only": True, "mode": "0640"}])
    assert result["changed"] is True
    assert (log.read_text(), log.stat().st_mode & 0o777) == ("GET / 200\n", 0o640)
    assert (
        ensure(tmp_path, [{"path": str(log), "content": "", "create_only": True, "mode": "0640"}])["changed"]
        is False
    )


def test_a_secret_never_shows(tmp_path: Path) -> None:
    env = tmp_path / "env"
    result = ensure(
        tmp_path, [{"path": str(env), "content": "TOKEN=s3cret-value\n", "secret": True}], diff=True
    )
    assert env.read_text() == "TOKEN=s3cret-value\n"
    assert "s3cret-value" not in json.dumps(result)


def test_an_unknown_owner_is_named(tmp_path: Path) -> None:
    result = ensure(tmp_path, [{"path": str(tmp_path / "x"), "content": "", "owner": "no-such-user"}])
    assert result["failed"] is True
    assert "'no-such-user' is no user" in result["msg"]


def test_the_manifest_lists_what_each_call_ensured(tmp_path: Path) -> None:
    manifest = tmp_path / "state" / "app" / "managed.json"
    site, upstream, unit = tmp_path / "site.conf", tmp_path / "upstream.conf", tmp_path / "app.service"
    ensure(tmp_path, [{"path": str(site), "content": "server {}\n"}], check=True, manifest=manifest)
    assert not manifest.exists()  # check mode writes nothing
    ensure(tmp_path, [{"path": str(site), "content": "server {}\n"}], manifest=manifest)
    ensure(
        tmp_path,
        [
            {"path": str(upstream), "content": "server x;\n", "create_only": True},
            {"path": str(unit), "content": "[Unit]\n", "report_only": True},  # installed by a call after it
        ],
        manifest=manifest,
    )
    listed = {str(site): "whole", str(upstream): "attributes", str(unit): "whole"}
    assert json.loads(manifest.read_text()) == listed
    assert mode_of(manifest) == 0o600
