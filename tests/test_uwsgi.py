"""uWSGI's rendered uwsgi.ini runs the example app in a real uWSGI (pyuwsgi, as the releases
install it): the check the role runs, the uwsgi-protocol health check, scaling and the graceful
stop through the master FIFO, and Nginx's uwsgi_pass in front of it."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from render import PROJECT, environment, render, role_defaults
from test_release_tool import tool
from test_templates import SITE, local_site, needs_nginx, serving

INI = "etc/gunship/app/uwsgi.ini.j2"
UWSGI = Path(sys.executable).parent / "uwsgi"
RELEASE_ID = "20261203T120000Z"


def uwsgi_vars(tmp_path: Path, **overrides: object) -> dict:
    variables = role_defaults(
        "uwsgi",
        **{
            "uwsgi_app_name": "shop",
            "uwsgi_wsgi_app": "gunship_example:create_app()",
            "uwsgi_socket_dir": str(tmp_path / "run"),
            "uwsgi_binds_socket": True,
            **overrides,
        },
    )
    role_vars = yaml.safe_load((PROJECT / "roles" / "uwsgi" / "vars" / "main.yml").read_text())
    for name in ("_uwsgi_module", "_uwsgi_expression"):
        variables[name] = environment().from_string(role_vars[name]).render(**variables)
    return variables


def write_ini(tmp_path: Path, variables: dict) -> Path:
    """The rendered ini, its FIFO in tmp_path instead of /run (the slot's runtime directory)."""
    (tmp_path / "run" / "blue").mkdir(parents=True, exist_ok=True)
    text = render(INI, variables).replace("/run/shop/", f"{tmp_path}/run/")
    ini = tmp_path / "uwsgi.ini"
    ini.write_text(text)
    return ini


def slot_env() -> dict[str, str]:
    return {**os.environ, "GUNSHIP_SLOT": "blue", "GUNSHIP_SECRET_TOKEN": "test-secret"}


def release_dir(tmp_path: Path) -> Path:
    release = tmp_path / "releases" / RELEASE_ID
    release.mkdir(parents=True, exist_ok=True)
    return release


def the_check(tmp_path: Path, ini: Path) -> subprocess.CompletedProcess[str]:
    """What the role's check runs: `uwsgi --get socket --ini FILE`, in the release."""
    return subprocess.run(
        [UWSGI, "--get", "socket", "--ini", ini],
        cwd=release_dir(tmp_path),
        env=slot_env(),
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_default_ini_passes_the_check_and_names_the_slots_socket(tmp_path: Path) -> None:
    result = the_check(tmp_path, write_ini(tmp_path, uwsgi_vars(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{tmp_path}/run/blue.sock"


def test_the_check_refuses_an_option_uwsgi_does_not_know(tmp_path: Path) -> None:
    ini = write_ini(tmp_path, uwsgi_vars(tmp_path, uwsgi_settings={"harakiri-verbos": True}))
    result = the_check(tmp_path, ini)
    assert result.returncode != 0
    assert "unknown config directive: harakiri-verbos" in result.stderr


def test_the_production_settings_are_written() -> None:
    lines = set(render(INI, uwsgi_vars(Path("/t"), uwsgi_binds_socket=False)).splitlines())
    assert {
        "strict = true",
        "master = true",
        "need-app = true",
        "die-on-term = true",
        "vacuum = true",
        "processes = 10",
        "cheaper-initial = 5",
        "harakiri = 30",
        "max-requests = 1000",
        "max-requests-delta = 100",
        "buffer-size = 32768",
        "post-buffering = 65536",
        "socket = /t/run/$(GUNSHIP_SLOT).sock",
    } <= lines
    # Under systemd the socket unit holds the socket, its mode and its backlog.
    assert not any(line.startswith(("chmod-socket", "listen")) for line in lines)


@pytest.fixture
def slot(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], object]]:
    """A slot's master started from the rendered ini, as the slot's process manager starts it,
    and the release tool's view of it."""
    ini = write_ini(tmp_path, uwsgi_vars(tmp_path, uwsgi_processes=2, uwsgi_max_processes=3))
    log = (tmp_path / "uwsgi.log").open("wb")
    master = subprocess.Popen(
        [UWSGI, "--ini", ini], cwd=release_dir(tmp_path), env=slot_env(), stdout=log, stderr=log
    )
    cycle = tool.Cycle(
        app="shop",
        root=tmp_path,
        slots=["blue", "green"],
        service="uwsgi-shop-{slot}",
        socket_unit="",
        socket=f"{tmp_path}/run/{{slot}}.sock",
        upstream_file=tmp_path / "shop.upstream.conf",
        health_path="/healthz",
        health_host="localhost",
        health_timeout=20,
        front_port=80,
        warm_seconds=0,
        journal_lines=5,
        release_marker=f"{tmp_path}/run/{{slot}}/release",
        app_server="uwsgi",
        graceful_seconds=10,
    )
    try:
        assert (
            tool.poll_health(cycle, lambda: cycle.server.health_status("blue"), tries=100, pause=0.2) is None
        ), (tmp_path / "uwsgi.log").read_text()
        yield master, cycle
    finally:
        master.kill()
        master.wait()
        log.close()


def test_the_health_check_speaks_the_uwsgi_protocol_to_the_slot(slot) -> None:
    _, cycle = slot
    assert cycle.server.health_status("blue") == 200
    assert tool.uwsgi_status(cycle.socket_of("blue"), "/nowhere?x=1", "localhost", 5) == 404


def test_scale_adds_and_removes_workers_between_one_and_the_ceiling(slot) -> None:
    master, cycle = slot
    server = cycle.server

    def settled(count: int) -> bool:
        for _ in range(50):
            if server.workers(master.pid) == count:
                return True
            time.sleep(0.1)
        return False

    assert settled(2)
    assert "2 -> 3 workers" in server.scale("blue", master.pid, +1, dry_run=False)
    assert settled(3)
    with pytest.raises(tool.CycleError, match="at most 3 \\(uwsgi_max_processes\\)"):
        server.scale("blue", master.pid, +1, dry_run=False)
    server.scale("blue", master.pid, -2, dry_run=False)
    assert settled(1)
    with pytest.raises(tool.CycleError, match="cannot go below one"):
        server.scale("blue", master.pid, -1, dry_run=False)


def test_the_graceful_stop_ends_the_master_and_removes_its_socket(slot) -> None:
    master, cycle = slot
    cycle.server.stop_gracefully("blue", master.pid)
    assert master.wait(timeout=5) == 0
    assert not Path(cycle.socket_of("blue")).exists()


@needs_nginx
def test_nginx_passes_requests_to_the_slot_over_the_uwsgi_protocol(tmp_path: Path, slot) -> None:
    _, cycle = slot
    variables, port = local_site(tmp_path, f"unix:{cycle.socket_of('blue')}", nginx_app_protocol="uwsgi")
    site = render(SITE, variables)
    assert "uwsgi_pass shop_app;" in site and "proxy_pass" not in site
    web = tmp_path / "nginx"
    web.mkdir()
    with serving(web, site, port):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", "/version", headers={"Host": "shop.example.com"})
        response = connection.getresponse()
        body = response.read().decode()
        assert response.status == 200, body
        # The app runs in the release the slot started in, and says so.
        assert f'"release":"{RELEASE_ID}"' in body.replace(" ", "")
        assert response.getheader("X-Content-Type-Options") == "nosniff"
