"""gunship-release's choices that need no running host: which release a rollback picks, the
lock, and what Nginx's upstream file says."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "roles" / "release" / "files" / "gunship_release.py"
spec = importlib.util.spec_from_file_location("gunship_release", SCRIPT)
assert spec and spec.loader
tool = importlib.util.module_from_spec(spec)
sys.modules["gunship_release"] = tool  # dataclasses look their module up there
spec.loader.exec_module(tool)


@pytest.fixture
def cycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # No systemd here: every slot counts as stopped, so slots are read from their links.
    monkeypatch.setattr(tool, "is_active", lambda unit: False)
    monkeypatch.setattr(tool, "unit_property", lambda unit, name: "")
    monkeypatch.setattr(tool, "enablement", lambda *units: "enabled")
    (tmp_path / "releases").mkdir()
    (tmp_path / "slots").mkdir()
    return tool.Cycle(
        app="shop",
        root=tmp_path,
        slots=["blue", "green"],
        service="gunicorn-shop@{slot}.service",
        socket_unit="gunicorn-shop@{slot}.socket",
        socket="/run/shop/{slot}.sock",
        upstream_file=tmp_path / "shop.upstream.conf",
        health_path="/healthz",
        health_host="localhost",
        health_timeout=1,
        front_port=80,
        warm_seconds=0,
        journal_lines=5,
        release_marker="/nonexistent/{slot}/release",
    )


def add_release(cycle, rid: str, at: str, previous: str | None = None) -> None:
    path = cycle.releases_dir / rid
    path.mkdir()
    record = {"id": rid, "version": rid[-1], "deployed_at": at, "previous": previous}
    (path / "release.json").write_text(json.dumps(record))


def go_live(cycle, rid: str, slot: str = "blue") -> None:
    os.symlink(cycle.releases_dir / rid, cycle.slot_link(slot))
    os.symlink(slot, cycle.live_link)


def test_rollback_picks_the_release_before_the_live_one(cycle) -> None:
    add_release(cycle, "r1", "2026-01-01T00:00:00Z")
    add_release(cycle, "r2", "2026-01-02T00:00:00Z", previous="r1")
    add_release(cycle, "r3", "2026-01-03T00:00:00Z", previous="r2")
    go_live(cycle, "r3")
    assert tool.rollback_target(cycle, None) == "r2"
    assert tool.rollback_target(cycle, "r1") == "r1"


def test_rollback_skips_a_release_its_deploy_removed(cycle) -> None:
    """r3's previous release r2 is gone (its deploy failed and removed it, or it was pruned):
    the rollback goes to the newest release older than r3 that is still there."""
    add_release(cycle, "r1", "2026-01-01T00:00:00Z")
    add_release(cycle, "r3", "2026-01-03T00:00:00Z", previous="r2")
    go_live(cycle, "r3")
    assert tool.rollback_target(cycle, None) == "r1"


@pytest.mark.parametrize(
    "to, message",
    [
        (None, "nothing to roll back to: no release on this host is older than the live one"),
        ("r1", "it is already live"),
        ("r9", "not on this host"),
    ],
)
def test_rollback_refuses_clearly(cycle, to: str | None, message: str) -> None:
    add_release(cycle, "r1", "2026-01-01T00:00:00Z")
    go_live(cycle, "r1")
    with pytest.raises(tool.CycleError, match=message):
        tool.rollback_target(cycle, to)


def test_a_second_lock_names_the_holder_and_leaves_the_first(cycle) -> None:
    tool.acquire_lock(cycle, "alice@laptop")
    with pytest.raises(tool.CycleError, match="locked by alice@laptop since"):
        tool.acquire_lock(cycle, "bob@ci")
    assert tool.read_lock(cycle)["holder"] == "alice@laptop"


def lock_args(**overrides: object) -> argparse.Namespace:
    return argparse.Namespace(
        **{
            "command": "lock",
            "holder": "alice@laptop",
            "python": None,
            "dry_run": False,
            "settings": None,
            **overrides,
        }
    )


def lock(cycle, capsys, **overrides: object) -> dict:
    """`gunship-release shop lock`; with settings, the cycle is the one they describe (as main() reads it)."""
    settings = overrides.get("settings")
    assert tool.run(tool.Cycle.from_text(settings) if settings else cycle, lock_args(**overrides)) == 0
    return json.loads(capsys.readouterr().out)


def test_the_lock_reports_the_live_release_and_the_target(cycle, capsys) -> None:
    add_release(cycle, "r1", "2026-01-01T00:00:00Z")
    go_live(cycle, "r1", slot="green")
    os.symlink(cycle.releases_dir / "r1", cycle.root / "current")
    state = lock(cycle, capsys, python=sys.executable)
    assert state["locked"] is True and tool.read_lock(cycle)["holder"] == "alice@laptop"
    assert state["live_slot"] == "green"
    assert state["live_release"]["id"] == "r1"
    assert state["target"]["python"] == f"{sys.version_info[0]}.{sys.version_info[1]}"


def test_a_first_deploy_finds_nothing_live(cycle, capsys) -> None:
    state = lock(cycle, capsys)
    assert (state["live_slot"], state["live_release"]) == ("", {})


def test_a_dry_run_lock_reports_without_locking(cycle, capsys) -> None:
    assert lock(cycle, capsys, dry_run=True)["locked"] is False
    assert tool.read_lock(cycle) is None


def test_a_target_python_that_fails_leaves_no_lock(cycle) -> None:
    with pytest.raises(tool.CycleError, match="release_python /nonexistent/python3 cannot run"):
        tool.run(cycle, lock_args(python="/nonexistent/python3"))
    assert tool.read_lock(cycle) is None


def settings_of(cycle, **changes: object) -> str:
    """cycle.json's text for the cycle, with some settings changed."""
    return json.dumps(dataclasses.asdict(cycle) | changes, default=str, indent=2)


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(tool, "CONFIG_DIR", tmp_path / "etc")
    (tmp_path / "etc" / "shop").mkdir(parents=True)
    return tmp_path / "etc" / "shop"


def test_the_lock_writes_the_runs_settings_under_it(cycle, config_dir, capsys) -> None:
    settings = settings_of(cycle)
    assert lock(cycle, capsys, settings=settings)["settings_changed"] is True
    assert (config_dir / "cycle.json").read_text() == settings
    tool.run(cycle, argparse.Namespace(command="unlock", dry_run=False, settle=None))
    capsys.readouterr()
    assert lock(cycle, capsys, settings=settings)["settings_changed"] is False


def test_a_dry_run_lock_says_the_settings_would_change_and_writes_nothing(cycle, config_dir, capsys) -> None:
    assert lock(cycle, capsys, settings=settings_of(cycle), dry_run=True)["settings_changed"] is True
    assert not (config_dir / "cycle.json").exists()


def test_settings_that_move_a_running_app_are_refused_and_leave_no_lock(
    cycle, config_dir, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = settings_of(cycle)
    (config_dir / "cycle.json").write_text(old)
    add_release(cycle, "r1", "2026-01-01T00:00:00Z")
    go_live(cycle, "r1", slot="green")
    # systemd says the live slot's master runs
    monkeypatch.setattr(tool, "is_active", lambda unit: "green" in unit)
    monkeypatch.setattr(tool, "unit_property", lambda unit, name: "4242" if "green" in unit else "0")
    moved = settings_of(cycle, process_manager="supervisor")
    with pytest.raises(tool.CycleError) as refused:
        tool.run(tool.Cycle.from_text(moved), lock_args(settings=moved))
    assert 'app_process_manager is "supervisor", but shop already runs on' in str(refused.value)
    assert "as gunicorn under systemd (slot green)" in str(refused.value)
    assert tool.read_lock(cycle) is None
    assert (config_dir / "cycle.json").read_text() == old


def test_settings_may_move_an_app_whose_slots_are_stopped(cycle, config_dir, capsys) -> None:
    (config_dir / "cycle.json").write_text(settings_of(cycle))
    add_release(cycle, "r1", "2026-01-01T00:00:00Z")
    go_live(cycle, "r1", slot="green")  # linked, but nothing runs (the fixture's systemd)
    moved = settings_of(cycle, app_server="uwsgi")
    assert lock(cycle, capsys, settings=moved)["settings_changed"] is True
    assert (config_dir / "cycle.json").read_text() == moved


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A deploy that ended well on the host: r1 live in blue, and a manifest of two files."""
    monkeypatch.setattr(tool, "STATE_DIR", tmp_path / "state")
    (tmp_path / "state" / "shop").mkdir(parents=True)
    (tmp_path / "site.conf").write_text("server {}\n")
    (tmp_path / "upstream.conf").write_text("server unix:/run/shop/blue.sock;\n")
    manifest = {str(tmp_path / "site.conf"): "whole", str(tmp_path / "upstream.conf"): "attributes"}
    (tmp_path / "state" / "shop" / "managed.json").write_text(json.dumps(manifest))
    return tmp_path / "state" / "shop"


def unlock(cycle, capsys, settle: str | None) -> dict:
    assert tool.run(cycle, argparse.Namespace(command="unlock", dry_run=False, settle=settle)) == 0
    return json.loads(capsys.readouterr().out)


def settled(cycle, capsys, fingerprint: str) -> bool:
    """`gunship-release shop settled --fingerprint F`: asked by deploy.yml's first play."""
    assert tool.run(cycle, argparse.Namespace(command="settled", fingerprint=fingerprint)) == 0
    return json.loads(capsys.readouterr().out)["settled"]


def test_a_host_is_settled_with_the_fingerprint_of_the_deploy_that_left_it(cycle, state_dir, capsys) -> None:
    add_release(cycle, "r1", "2026-01-01T00:00:00Z")
    go_live(cycle, "r1")
    lock(cycle, capsys)
    unlock(cycle, capsys, settle="f1")
    assert tool.read_lock(cycle) is None
    assert settled(cycle, capsys, "f1") is True
    assert settled(cycle, capsys, "f2") is False  # other inputs


def test_taking_the_lock_forgets_the_record(cycle, state_dir, capsys) -> None:
    """The run that takes the lock may fail half-way: a dry run (check mode) keeps the record."""
    add_release(cycle, "r1", "2026-01-01T00:00:00Z")
    go_live(cycle, "r1")
    tool.settle(cycle, "f1")
    assert "settled" not in lock(cycle, capsys, dry_run=True)
    assert settled(cycle, capsys, "f1") is True
    lock(cycle, capsys)
    unlock(cycle, capsys, settle=None)
    assert settled(cycle, capsys, "f1") is False


def test_a_host_under_a_lock_is_not_settled(cycle, state_dir, capsys) -> None:
    """Asked before the lock (deploy.yml's first play): a deploy or rollback under way answers no."""
    add_release(cycle, "r1", "2026-01-01T00:00:00Z")
    go_live(cycle, "r1")
    tool.settle(cycle, "f1")
    assert settled(cycle, capsys, "f1") is True
    tool.acquire_lock(cycle, "bob@ci (rollback)")
    assert settled(cycle, capsys, "f1") is False


@pytest.mark.parametrize(
    "change",
    [
        lambda root: (root / "site.conf").write_text("server { listen 81; }\n"),  # edited by hand
        lambda root: (root / "site.conf").chmod(0o600),
        lambda root: (root / "site.conf").unlink(),
        lambda root: (root / "upstream.conf").chmod(0o600),  # only its owner and mode are Gunship's
        lambda root: os.replace(root / "slots" / "live", root / "slots" / "gone"),  # no live slot
    ],
)
def test_a_host_changed_since_its_last_deploy_is_not_settled(cycle, state_dir, capsys, change) -> None:
    add_release(cycle, "r1", "2026-01-01T00:00:00Z")
    go_live(cycle, "r1")
    tool.settle(cycle, "f1")
    assert tool.is_settled(cycle, "f1")
    change(cycle.root)
    assert not tool.is_settled(cycle, "f1")


def test_a_host_upgraded_or_resized_in_place_is_not_settled(cycle, state_dir, monkeypatch) -> None:
    """The control node's fingerprint has no facts (they are gathered only on a host that is not
    settled): the host adds its own, such as the CPUs the workers' default count reads."""
    add_release(cycle, "r1", "2026-01-01T00:00:00Z")
    go_live(cycle, "r1")
    tool.settle(cycle, "f1")
    assert tool.is_settled(cycle, "f1")
    monkeypatch.setattr(tool.os, "cpu_count", lambda: 64)
    assert not tool.is_settled(cycle, "f1")


def test_a_switch_to_another_release_unsettles_the_host(cycle, state_dir) -> None:
    """A rollback by hand: the live slot runs another release."""
    for rid, day in (("r1", "01"), ("r2", "02")):
        add_release(cycle, rid, f"2026-01-{day}T00:00:00Z")
    go_live(cycle, "r2")
    tool.settle(cycle, "f1")
    os.symlink(cycle.releases_dir / "r1", cycle.slot_link("green"))
    os.replace(cycle.live_link, cycle.root / "slots" / "old-live")
    os.symlink("green", cycle.live_link)
    assert not tool.is_settled(cycle, "f1")


def test_upstream_content_written_by_the_switch_keeps_the_host_settled(cycle, state_dir) -> None:
    add_release(cycle, "r1", "2026-01-01T00:00:00Z")
    go_live(cycle, "r1")
    tool.settle(cycle, "f1")
    (cycle.root / "upstream.conf").write_text("server unix:/run/shop/green.sock;\n")
    assert tool.is_settled(cycle, "f1")


def test_upstream_names_the_slot_socket(cycle) -> None:
    assert "server unix:/run/shop/green.sock fail_timeout=0;" in tool.upstream_text(cycle, "green")


@pytest.mark.parametrize("change", ["2", "+0", "+x", "*2"])
def test_scale_refuses_what_is_not_plus_or_minus_n(cycle, change: str) -> None:
    with pytest.raises(tool.CycleError, match="give \\+N or -N"):
        tool.scale(cycle, change, dry_run=True)


def test_prune_keeps_the_newest_the_live_and_the_named(cycle) -> None:
    for number in range(1, 7):
        add_release(cycle, f"r{number}", f"2026-01-0{number}T00:00:00Z")
        os.utime(cycle.releases_dir / f"r{number}", (number * 1000, number * 1000))
    go_live(cycle, "r1")  # live, and the oldest
    os.symlink(cycle.releases_dir / "r2", cycle.slot_link("green"))
    assert tool.prune(cycle, 2, ["r3"], dry_run=True) == ["r4"]
    assert (cycle.releases_dir / "r4").is_dir()
    assert tool.prune(cycle, 2, ["r3"], dry_run=False) == ["r4"]
    assert sorted(path.name for path in cycle.releases_dir.iterdir()) == ["r1", "r2", "r3", "r5", "r6"]


def serve_on_unix_socket(path: Path, status: int):
    """An HTTP server on a unix socket that answers every GET with `status`."""
    import socketserver
    import threading
    from http.server import BaseHTTPRequestHandler

    class Answer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
        daemon_threads = True

        def get_request(self):  # BaseHTTPRequestHandler wants a (host, port) client address
            request, _ = super().get_request()
            return request, ("local", 0)

    server = Server(str(path), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.parametrize(
    "accept, status, healthy",
    [("below-500", 404, True), ("below-500", 302, True), ("below-500", 502, False), ("2xx", 404, False)],
)
def test_without_a_health_path_any_answer_below_500_from_root_passes(
    cycle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, accept: str, status: int, healthy: bool
) -> None:
    monkeypatch.setattr(tool.SystemdSlots, "log_tail", lambda self, slot, lines: "(log)")
    socket_path = tmp_path / "blue.sock"
    server = serve_on_unix_socket(socket_path, status)
    checked = tool.Cycle(
        **{
            **cycle.__dict__,
            "socket": str(tmp_path / "{slot}.sock"),
            "health_path": "/",
            "health_accept": accept,
        }
    )
    try:
        if healthy:
            tool.wait_healthy(checked, "blue")
        else:
            with pytest.raises(tool.CycleError) as refused:
                tool.wait_healthy(checked, "blue")
            message = str(refused.value)
            assert f"gave HTTP {status}" in message
            if accept == "below-500":
                assert "app_health_path is not set" in message and "set app_health_path" in message
    finally:
        server.shutdown()
        server.server_close()


EXEC = SCRIPT.with_name("gunship_exec.py")


def as_the_test_user(cycle, tmp_path: Path) -> None:
    """Commands run "as the app" through the real gunship-exec, as whoever runs the tests."""
    import grp
    import pwd

    tool_copy = tmp_path / "gunship-exec"  # installed 0755, as the release role does
    tool_copy.write_text(EXEC.read_text().replace("#!/usr/bin/python3", f"#!{sys.executable}", 1))
    tool_copy.chmod(0o755)
    cycle.exec_tool = str(tool_copy)
    cycle.user = pwd.getpwuid(os.geteuid()).pw_name
    cycle.group = grp.getgrgid(os.getegid()).gr_name
    (tmp_path / "env").write_text('SCHEMA_FILE="%s"\n' % (tmp_path / "schema"))
    cycle.env_file = str(tmp_path / "env")


def test_each_release_records_its_schema_and_a_rollback_across_a_change_is_refused(cycle, tmp_path) -> None:
    as_the_test_user(cycle, tmp_path)
    cycle.schema_command = 'cat "$SCHEMA_FILE"'  # the app's environment is there
    (tmp_path / "schema").write_text("[X] shop.0001_initial\n")
    add_release(cycle, "r1", "2026-01-01T00:00:00Z")
    assert tool.record_schema(cycle, "r1")["schema"]["summary"] == "[X] shop.0001_initial"
    (tmp_path / "schema").write_text("[X] shop.0001_initial\n[X] shop.0002_orders\n")
    add_release(cycle, "r2", "2026-01-02T00:00:00Z", previous="r1")
    assert tool.record_schema(cycle, "r2")["changed"]
    assert not tool.record_schema(cycle, "r2")["changed"]  # the same state again
    go_live(cycle, "r2")
    os.symlink(cycle.releases_dir / "r2", cycle.root / "current")
    refusal = tool.schema_refusal(cycle, "r1")
    assert "only the live release r2 has 1 line(s): '[X] shop.0002_orders'" in refusal
    assert "'[X] shop.0001_initial'" in refusal and "--force" in refusal
    # A release that never recorded a state is not compared.
    add_release(cycle, "r0", "2025-12-31T00:00:00Z")
    assert tool.schema_refusal(cycle, "r0") is None


def test_a_failing_schema_command_names_itself_and_its_output(cycle, tmp_path) -> None:
    as_the_test_user(cycle, tmp_path)
    cycle.schema_command = "echo 'no such table: django_migrations' >&2; exit 2"
    add_release(cycle, "r1", "2026-01-01T00:00:00Z")
    with pytest.raises(tool.CycleError, match=r"(?s)failed in release r1 \(exit 2\).*no such table"):
        tool.record_schema(cycle, "r1")
    assert "schema" not in json.loads((cycle.releases_dir / "r1" / "release.json").read_text())


def test_maintenance_writes_the_page_with_the_message_escaped_and_removes_it(cycle, tmp_path) -> None:
    cycle.maintenance_mark = "<!-- message -->"
    cycle.maintenance_template = str(tmp_path / "template.html")
    cycle.maintenance_page = str(tmp_path / "www" / "maintenance.html")
    Path(cycle.maintenance_template).write_text("<p><!-- message --></p>\n")
    cycle.root.joinpath("audit.log").touch()
    on = tool.maintenance(cycle, "on", "Back at <noon>", "ops", dry_run=False)
    assert (on["maintenance"], on["changed"], on["by"]) == (True, True, "ops")
    assert Path(cycle.maintenance_page).read_text() == "<p>Back at &lt;noon&gt;</p>\n"
    assert not tool.maintenance(cycle, "on", "Back at <noon>", "ops", dry_run=False)["changed"]
    assert tool.maintenance(cycle, "status", None, "ops", dry_run=False)["message"] == "Back at <noon>"
    assert tool.maintenance(cycle, "off", None, "ops", dry_run=True)["changed"]
    assert Path(cycle.maintenance_page).exists()  # a dry run changes nothing
    assert tool.maintenance(cycle, "off", None, "ops", dry_run=False)["changed"]
    assert not Path(cycle.maintenance_page).exists()
    outcomes = [json.loads(line)["outcome"] for line in cycle.audit_log.read_text().splitlines()]
    assert outcomes == ["on", "off"]


def test_slot_logs_give_both_slots_last_lines_under_supervisor(cycle, tmp_path: Path, capsys) -> None:
    """What a failed deploy reports: the last lines of both slots, from supervisor's log files."""
    cycle.process_manager = "supervisor"
    cycle.log_file = str(tmp_path / "{slot}.log")
    (tmp_path / "blue.log").write_text("".join(f"blue {n}\n" for n in range(30)))
    (tmp_path / "green.log").write_text("green failed to import\n")
    tool.run(cycle, argparse.Namespace(command="slot-logs", lines=3))
    printed = capsys.readouterr().out.split("\n")
    assert printed[:4] == ["blue 27", "blue 28", "blue 29", "green failed to import"]
