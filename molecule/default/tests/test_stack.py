"""The deployed stack, as a user meets it: pages through Nginx, Gunicorn under systemd (or
supervisor, in the supervisor scenario)."""

from __future__ import annotations

import uuid

import pytest
import testinfra
from conftest import (
    APP,
    ROOT,
    SUPERVISOR,
    eventually,
    fetch,
    journal,
    live_record,
    live_slot,
    live_unit,
    master_pid,
    restart_slot,
    slot_running,
    worker_pids,
)


@pytest.mark.skipif(SUPERVISOR, reason="systemd units; the supervisor case is below")
@pytest.mark.parametrize("suffix", ["nginx.service", ".socket", ".service"])
def test_units_are_active_and_enabled(node: testinfra.host.Host, suffix: str) -> None:
    # The live slot's units start at boot; Nginx always.
    unit = suffix if suffix == "nginx.service" else live_unit(node) + suffix
    service = node.service(unit)
    assert service.is_running, journal(node, unit)
    assert service.is_enabled


@pytest.mark.skipif(not SUPERVISOR, reason="supervisor only")
def test_supervisord_runs_the_live_slot_and_starts_it_at_boot(
    container: str, node: testinfra.host.Host
) -> None:
    for unit in ("supervisor.service", "nginx.service"):
        assert node.service(unit).is_running and node.service(unit).is_enabled, unit
    assert slot_running(node, live_unit(node)), journal(node, live_unit(node))
    # A boot: supervisord starts again with no slot running; its boot program starts the live one.
    node.check_output("supervisorctl stop all")
    assert not slot_running(node, live_unit(node))
    node.check_output("systemctl restart supervisor.service")
    assert eventually(lambda: slot_running(node, live_unit(node)), 30), journal(node, live_unit(node))
    idle = "green" if live_slot(node) == "blue" else "blue"
    assert not slot_running(node, live_unit(node).removesuffix(live_slot(node)) + idle)
    assert eventually(lambda: fetch(container, "/healthz").status == 200, 30)


def app_master(node: testinfra.host.Host) -> int:
    pid = master_pid(node)
    assert pid > 0, journal(node, live_unit(node))
    return pid


def test_worker_count_is_twice_the_cores_plus_one(node: testinfra.host.Host) -> None:
    cores = int(node.check_output("nproc"))
    assert len(worker_pids(node, app_master(node))) == 2 * cores + 1


def test_scale_adds_workers_and_takes_them_away(node: testinfra.host.Host) -> None:
    """`fab scale` calls this on each host: Gunicorn's TTIN and TTOU, uWSGI's master FIFO."""
    master = app_master(node)
    before = len(worker_pids(node, master))
    node.check_output("gunship-release gunship-example scale +2")
    assert eventually(lambda: len(worker_pids(node, master)) == before + 2, 20)
    node.check_output("gunship-release gunship-example scale -2")
    assert eventually(lambda: len(worker_pids(node, master)) == before, 30)


def test_app_processes_run_as_the_app_user(node: testinfra.host.Host) -> None:
    master = app_master(node)
    users = node.check_output(f"ps --no-headers -o user:32 -p {master} --ppid {master}").split()
    assert users and set(users) == {APP}


def only_the_app_and_the_web_server_connect(node: testinfra.host.Host) -> None:
    sock = node.file(f"/run/{APP}/{live_slot(node)}.sock")
    assert sock.is_socket
    connect = f"python3 -c 'import socket; socket.socket(socket.AF_UNIX).connect(\"{sock.path}\")'"
    for user in (APP, "www-data"):
        assert node.run(f"runuser -u {user} -- {connect}").succeeded, user
    denied = node.run(f"runuser -u nobody -- {connect}")
    assert denied.rc != 0 and "PermissionError" in denied.stderr, denied.stderr
    if not SUPERVISOR:  # systemd owns it; under supervisor Gunicorn does, in a closed directory
        assert (sock.user, sock.group, sock.mode) == (APP, "www-data", 0o660)


def test_socket_belongs_to_the_app_and_the_web_server_only(node: testinfra.host.Host) -> None:
    only_the_app_and_the_web_server_connect(node)


def test_socket_keeps_its_owner_across_restarts(container: str, node: testinfra.host.Host) -> None:
    unit = live_unit(node)
    assert restart_slot(node, unit), journal(node, unit)
    if SUPERVISOR:  # Gunicorn binds anew: the socket is back once the master is
        assert eventually(lambda: fetch(container, "/healthz").status == 200, 30), journal(node, unit)
    else:  # systemd kept the socket: the request waited for the master
        assert fetch(container, "/healthz").status == 200, journal(node, unit)
    only_the_app_and_the_web_server_connect(node)


def test_front_page_is_served_through_nginx(container: str, node: testinfra.host.Host) -> None:
    page = fetch(container, "/")
    assert page.status == 200
    assert page.headers["server"].startswith("nginx")
    assert f'<span id="version">{live_record(node)["version"]}</span>' in page.body
    assert 'href="/static/style.css"' in page.body


def test_health_check_answers(container: str) -> None:
    answer = fetch(container, "/healthz")
    assert answer.status == 200
    assert answer.json() == {"status": "ok"}


def test_stylesheet_is_served_by_nginx_not_gunicorn(container: str, node: testinfra.host.Host) -> None:
    marker = uuid.uuid4().hex
    css = fetch(container, f"/static/style.css?probe={marker}")
    assert css.status == 200
    assert css.headers["content-type"] == "text/css"
    assert "max-age=2592000" in css.headers["cache-control"]
    # Nginx's log names who answered: nobody upstream for the stylesheet, the live slot's
    # Gunicorn socket for the page.
    fetch(container, f"/?probe={marker}")
    log = node.file(f"/var/log/nginx/{APP}.access.log").content_string.splitlines()
    [css_line] = [line for line in log if f"/static/style.css?probe={marker}" in line]
    [page_line] = [line for line in log if f"/?probe={marker}" in line]
    assert " upstream=- " in css_line
    assert f" upstream=unix:/run/{APP}/{live_slot(node)}.sock " in page_line


def test_unknown_host_gets_no_answer(container: str) -> None:
    with pytest.raises(ConnectionError):
        fetch(container, "/", host_header="not-this-site.example")


def test_current_points_at_the_release_it_describes(container: str, node: testinfra.host.Host) -> None:
    current = node.file(f"{ROOT}/current")
    assert current.is_symlink
    record = live_record(node)
    assert current.linked_to == f"{ROOT}/releases/{record['id']}"
    wheel = node.file(f"{current.linked_to}/wheels/{record['wheel']}")
    assert wheel.sha256sum == record["wheel_sha256"]
    assert fetch(container, "/version").json()["release"] == record["id"]
    assert fetch(container, "/version").json()["version"] == record["version"]


def test_code_and_env_file_are_out_of_the_apps_reach(node: testinfra.host.Host) -> None:
    release = node.file(f"{ROOT}/current").linked_to
    for path in (release, f"{release}/venv", f"{release}/venv/bin/python"):
        assert node.file(path).user == "root"
    env = node.file(f"{ROOT}/shared/env")
    assert (env.user, env.group, env.mode) == ("root", APP, 0o640)
    assert not node.run(f"runuser -u {APP} -- touch {release}/venv/intruder").succeeded
