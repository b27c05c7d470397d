"""Day two, after the release story, the secrets and the hooks (pytest takes the files in name
order), over real SSH as an operator works: `fab logs` shows a request just made, `fab exec`
runs a command as the app (and an interactive one on a terminal), maintenance mode answers 503
with the page while health checks and static files still work and outlives a deploy, and a
rollback across a change of the database schema is refused unless forced.

The tests build on each other, in file order."""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import pty
import secrets
import select
import shlex
import subprocess
import time
from pathlib import Path

import pytest
import testinfra
from conftest import HOST, app_environment, deploy, fab, fetch, ok, refused, run_playbook, served
from gunship_testkit import APP, BIN, PROJECT, ROOT, audit, live_record, versioned_source

MARK = secrets.token_hex(6)
# The "database" whose schema the releases record: a file the steps below migrate by hand.
SCHEMA_FILE = f"/tmp/gunship-schema-{MARK}"
SCHEMA = {"app_schema_command": f"cat {SCHEMA_FILE}"}
IDS: dict[str, str] = {}  # release ids by the schema state they were deployed with


def source(tmp_path_factory: pytest.TempPathFactory, version: str) -> Path:
    return versioned_source(tmp_path_factory.mktemp("src"), version)


def fab_exec(inventory: str, *command: str) -> subprocess.CompletedProcess[str]:
    """`fab exec --inventory INV -- COMMAND...`: everything after `--` is the command."""
    argv = [str(BIN / "fab"), "exec", "--inventory", inventory, "--", *command]
    return subprocess.run(argv, cwd=PROJECT, capture_output=True, text=True, check=False, timeout=300)


def test_fab_logs_shows_a_request_just_made_with_its_host(inventory: str) -> None:
    assert fetch(f"/version?probe={MARK}").status == 200
    out = ok(fab(inventory, "logs", "--lines", "30"))
    [line] = [line for line in out.splitlines() if f"probe={MARK}" in line]
    assert line.split()[:2] == [HOST, "nginx-access"]
    assert '" 200 ' in line and "upstream=unix:/run/" in line
    # The live slot's own log is there too, from the same host.
    assert any(line.split()[:2] == [HOST, "app"] for line in out.splitlines())


def test_fab_exec_runs_as_the_app_in_the_live_release_with_its_environment(inventory, node) -> None:
    probe = (
        "import hashlib, json, os, pwd, sys; print(json.dumps(dict(user=pwd.getpwuid(os.getuid()).pw_name,"
        " cwd=os.getcwd(), prefix=sys.prefix, tty=sys.stdin.isatty(),"
        " secret=hashlib.sha256(os.environ['GUNSHIP_SECRET_TOKEN'].encode()).hexdigest())))"
    )
    secret = app_environment(node)["GUNSHIP_SECRET_TOKEN"]  # what the live slots run with
    out = ok(fab_exec(inventory, "python", "-c", probe))
    seen = json.loads(out.strip().splitlines()[-1])
    live = f"{ROOT}/releases/{live_record(node)['id']}"
    assert seen == {
        "user": APP,
        "cwd": live,
        "prefix": f"{live}/venv",
        "tty": False,
        "secret": hashlib.sha256(secret.encode()).hexdigest(),
    }
    assert secret not in out
    # Who ran what is in the audit log; the environment's values are not.
    entry = [e for e in audit(node) if e["action"] == "exec"][-1]
    assert shlex.split(entry["command"]) == ["python", "-c", probe]
    assert (entry["by"], entry["to"]) == (getpass.getuser(), live_record(node)["id"])
    assert secret not in node.file(f"{ROOT}/audit.log").content_string


def test_fab_exec_fails_with_the_commands_exit_status(inventory) -> None:
    run = fab_exec(inventory, "sh", "-c", "echo oops >&2; exit 3")
    assert run.returncode == 3
    assert "oops" in run.stdout + run.stderr


def test_fab_exec_interactive_gets_a_terminal_and_our_input(inventory) -> None:
    """fab on a terminal of our own (a pty), as a person at a shell: the command on the host has a
    terminal too (ssh -t), asks a question and reads the answer we type."""
    question = "import sys; print('tty', sys.stdin.isatty()); print('hello', input('name? '))"
    argv = [str(BIN / "fab"), "exec", "--interactive", "--inventory", inventory]
    argv += ["--", "python", "-c", question]
    leader, follower = pty.openpty()
    child = subprocess.Popen(argv, cwd=PROJECT, stdin=follower, stdout=follower, stderr=follower)
    os.close(follower)
    seen, answered = b"", False
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and b"hello alice" not in seen:
            ready, _, _ = select.select([leader], [], [], 1)
            if ready:
                try:
                    seen += os.read(leader, 4096)
                except OSError:  # the child closed the terminal
                    break
            if b"name? " in seen and not answered:
                os.write(leader, b"alice\r")  # Enter
                answered = True
        assert child.wait(timeout=30) == 0, seen.decode(errors="replace")
    finally:
        child.kill()
        os.close(leader)
    text = seen.decode(errors="replace")
    assert "tty True" in text and "hello alice" in text, text


def test_maintenance_on_answers_503_but_health_and_static_still_work(inventory) -> None:
    out = ok(fab(inventory, "maintenance", "on", "--message", "Back at <noon>"))
    assert f"{HOST}: maintenance is on" in out
    page = fetch("/version")
    assert page.status == 503
    assert page.headers.get("retry-after") == "300"
    assert "Back at &lt;noon&gt;" in page.body  # the message, escaped, in the page
    assert fetch("/healthz").status == 200
    assert fetch("/static/style.css").status == 200


def test_maintenance_outlives_a_deploy_and_a_reload(inventory, node, tmp_path_factory) -> None:
    before = live_record(node)["id"]
    ok(deploy(inventory, source(tmp_path_factory, "7.0.0")))
    assert live_record(node)["id"] != before  # a new release went live behind the page
    with node.sudo():
        node.check_output("systemctl reload nginx")
    assert fetch("/version").status == 503
    assert "maintenance is on" in ok(fab(inventory, "maintenance", "status"))


def test_maintenance_off_serves_the_app_again(inventory) -> None:
    out = ok(fab(inventory, "maintenance", "off"))
    assert f"{HOST}: maintenance is off (was on)" in out
    assert served()["version"] == "7.0.0"


def test_the_deploy_variable_turns_maintenance_on_and_off(inventory, tmp_path_factory) -> None:
    src = source(tmp_path_factory, "7.1.0")
    ok(deploy(inventory, src, app_maintenance=True, app_maintenance_message="Upgrading"))
    page = fetch("/version")
    assert page.status == 503 and "Upgrading" in page.body
    ok(deploy(inventory, src, app_maintenance=False))
    assert served()["version"] == "7.1.0"


def test_a_bad_maintenance_value_is_refused_before_any_change(inventory, node, tmp_path_factory) -> None:
    before = live_record(node)["id"]
    out = refused(deploy(inventory, source(tmp_path_factory, "7.2.0"), app_maintenance="sometimes"))
    assert 'app_maintenance) is "sometimes"' in out
    assert live_record(node)["id"] == before


def migrate(node: testinfra.host.Host, state: str) -> None:
    with node.sudo():
        node.check_output(f"echo {state} >> {SCHEMA_FILE} && chmod 0644 {SCHEMA_FILE}")


def test_each_release_records_its_schema_state(inventory, node, tmp_path_factory) -> None:
    migrate(node, "0001_initial")
    ok(deploy(inventory, source(tmp_path_factory, "8.0.0"), **SCHEMA))
    IDS["0001"] = live_record(node)["id"]
    migrate(node, "0002_orders")
    ok(deploy(inventory, source(tmp_path_factory, "8.1.0"), **SCHEMA))
    IDS["0002"] = live_record(node)["id"]
    assert live_record(node)["schema"]["summary"] == "0002_orders"
    rows = {line.split()[0]: line for line in ok(fab(inventory, "releases")).splitlines()[2:]}
    assert rows[IDS["0001"]].endswith("0001_initial") and rows[IDS["0002"]].endswith("0002_orders")


def test_a_rollback_across_a_schema_change_is_refused_naming_both_states(inventory) -> None:
    out = refused(fab(inventory, "rollback"))
    assert "0001_initial" in out and "0002_orders" in out and "--force" in out
    assert served()["version"] == "8.1.0"
    out = refused(run_playbook("rollback.yml", inventory))
    assert "0001_initial" in out and "rollback_force=true" in out
    assert served()["version"] == "8.1.0"


def test_a_forced_rollback_goes_through_and_is_audited(inventory, node) -> None:
    out = ok(fab(inventory, "rollback", "--force"))
    assert f"forced-rollback: {IDS['0002']} -> {IDS['0001']}" in out
    assert served()["version"] == "8.0.0"
    assert audit(node)[-1]["action"] == "forced-rollback"
    # The playbook, forced, goes forward again to the newer schema's release.
    forward = ["-e", f"rollback_to={IDS['0002']}", "-e", "rollback_force=true"]
    ok(run_playbook("rollback.yml", inventory, *forward))
    assert served()["version"] == "8.1.0"
