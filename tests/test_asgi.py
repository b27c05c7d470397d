"""ASGI apps: Gunicorn's asgi worker and uvicorn's serve the ASGI example from the rendered
config; the import gate tells a WSGI callable from an ASGI one; a real Nginx passes websockets
and streams server-sent events from a real Gunicorn, with the stream paths' own timeout."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from render import render
from test_import_check import SCRIPT, check_import
from test_templates import (
    GUNICORN_CONF,
    SITE,
    check_config,
    gunicorn_vars,
    local_site,
    needs_nginx,
    printed_setting,
    serving,
)
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

ASGI_APP = "gunship_asgi_example:app"
WSGI_APP = "gunship_example:create_app()"
RELEASE_ID = "20261204T080000Z"


def asgi_vars(**overrides: object) -> dict:
    return gunicorn_vars(gunicorn_app_interface="asgi", gunicorn_wsgi_app=ASGI_APP, **overrides)


@pytest.mark.parametrize(
    "overrides, worker_class, max_requests",
    # uvicorn's worker resets the requests it accepted and had not begun when it recycles: it
    # does not, by default. Gunicorn's own drains first.
    [({}, "uvicorn_worker.UvicornWorker", "0"), ({"gunicorn_worker_class": "asgi"}, "asgi", "1000")],
    ids=["default-uvicorn", "asgi"],
)
def test_asgi_worker_classes_pass_gunicorns_check(
    tmp_path: Path, overrides: dict, worker_class: str, max_requests: str
) -> None:
    result = check_config(tmp_path, asgi_vars(**overrides))
    assert result.returncode == 0, result.stderr
    assert printed_setting(result.stdout, "worker_class") == worker_class
    assert printed_setting(result.stdout, "max_requests") == max_requests
    # Open websockets and event streams count against a worker's connections.
    assert printed_setting(result.stdout, "worker_connections") == "1000"


# --- the import gate -----------------------------------------------------------------------
PLAIN_APPS = """
async def app(scope, receive, send):
    pass

def application(environ, start_response):
    return []

class Legacy:
    def __call__(self, *args):
        return []

legacy = Legacy()
"""


def gate(tmp_path: Path, spec: str, interface: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "plainapps.py").write_text(PLAIN_APPS)
    return check_import(SCRIPT, tmp_path, spec, f"--interface={interface}")


@pytest.mark.parametrize(
    "spec, interface",
    [
        (ASGI_APP, "asgi"),
        ("plainapps:app", "asgi"),
        (WSGI_APP, "wsgi"),
        ("plainapps:application", "wsgi"),
        # A signature that says neither is let through: the app server's start decides.
        ("plainapps:legacy", "wsgi"),
        ("plainapps:legacy", "asgi"),
    ],
)
def test_the_gate_passes_a_callable_of_the_apps_interface(tmp_path: Path, spec: str, interface: str) -> None:
    result = gate(tmp_path, spec, interface)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "spec, interface, reason",
    [
        (ASGI_APP, "wsgi", "an async callable of scope, receive and send), but app_interface is 'wsgi'"),
        ("plainapps:app", "wsgi", "set app_interface: asgi"),
        (WSGI_APP, "asgi", "a WSGI app (it takes environ and start_response), but app_interface is 'asgi'"),
        ("plainapps:application", "asgi", "set app_interface: wsgi"),
        ("plainapps:nothing", "asgi", "the ASGI callable 'plainapps:nothing' does not import"),
    ],
)
def test_the_gate_refuses_a_callable_of_the_other_interface(
    tmp_path: Path, spec: str, interface: str, reason: str
) -> None:
    result = gate(tmp_path, spec, interface)
    assert result.returncode == 1
    assert reason in result.stderr


# --- Nginx in front of a real ASGI slot ------------------------------------------------------
class Slot:
    def __init__(self, master: subprocess.Popen[bytes], socket: Path, log: Path) -> None:
        self.master, self.socket, self.log = master, socket, log


@pytest.fixture(params=["asgi", "uvicorn"])
def slot(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Slot]:
    """A slot's Gunicorn started from the rendered config, as the process manager starts it,
    binding its socket itself (as under supervisor), with a short graceful timeout."""
    run = tmp_path / "run"
    (run / "blue").mkdir(parents=True)
    variables = asgi_vars(
        gunicorn_worker_class=request.param,
        gunicorn_workers=2,
        gunicorn_graceful_timeout=3,
        gunicorn_binds_socket=True,
        gunicorn_socket_dir=str(run),
    )
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text(render(GUNICORN_CONF, variables).replace("/run/shop/", f"{run}/"))
    release = tmp_path / "releases" / RELEASE_ID
    release.mkdir(parents=True)
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as output:
        master = subprocess.Popen(
            [Path(sys.executable).parent / "gunicorn", "--config", conf],
            cwd=release,
            env={**os.environ, "GUNSHIP_SLOT": "blue"},
            stdout=output,
            stderr=output,
        )
    socket = run / "blue.sock"
    try:
        for _ in range(100):
            if socket.exists():
                break
            time.sleep(0.1)
        assert socket.exists(), log.read_text()
        yield Slot(master, socket, log)
    finally:
        master.kill()
        master.wait()


@pytest.fixture
def site(tmp_path: Path, slot: Slot) -> Iterator[int]:
    """A real Nginx with the ASGI site: websockets on, /ws and /events streaming, a 2 s read
    timeout elsewhere and a 1 s client body timeout (neither may cut a websocket)."""
    variables, port = local_site(
        tmp_path,
        f"unix:{slot.socket}",
        nginx_websockets=True,
        nginx_stream_paths=["/ws", "/events"],
        nginx_stream_timeout=30,
        nginx_proxy_read_timeout=2,
        nginx_client_body_timeout=1,
    )
    web = tmp_path / "nginx"
    web.mkdir()
    with serving(web, render(SITE, variables), port):
        yield port


def get(port: int, path: str) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path, headers={"Host": "shop.example.com"})
    return connection.getresponse()


def websocket(port: int) -> ClientConnection:
    # (The site is the only one on its port: it answers whatever the Host.)
    return connect(f"ws://127.0.0.1:{port}/ws", open_timeout=5)


@needs_nginx
def test_the_page_and_a_websocket_echo_pass_through_nginx(site: int, slot: Slot) -> None:
    page = get(site, "/")
    body = page.read().decode()
    assert page.status == 200, body
    assert f'<span id="release">{RELEASE_ID}</span>' in body
    assert page.getheader("X-Content-Type-Options") == "nosniff"
    with websocket(site) as ws:
        assert ws.recv(timeout=5) == f"hello from {RELEASE_ID}"
        ws.send("ping")
        assert ws.recv(timeout=5) == "ping"
        # Idle longer than the site's read timeout and client body timeout: still open.
        time.sleep(3)
        ws.send("still there")
        assert ws.recv(timeout=5) == "still there"


@needs_nginx
def test_events_stream_as_sent_and_outlast_the_read_timeout(site: int) -> None:
    started = time.monotonic()
    answer = get(site, "/events?count=2&interval=2.5")
    assert answer.status == 200
    assert answer.getheader("Content-Type").startswith("text/event-stream")
    first = answer.readline().decode()
    first_after = time.monotonic() - started
    rest = answer.read().decode()
    # The first event arrives at once, not when the stream ends; the second comes 2.5 s later,
    # past the 2 s that cuts any other request.
    assert first.startswith("id: 1"), first
    assert first_after < 1.5, first_after
    assert f"data: 2 {RELEASE_ID}" in rest
    assert get(site, "/io?seconds=3").status == 504


@needs_nginx
def test_a_failing_request_leaves_its_traceback_in_the_log(site: int, slot: Slot) -> None:
    """Why uvicorn's worker is the default for ASGI apps: the app's exception, after Starlette
    has sent its 500, reaches the log with its traceback."""
    answer = get(site, "/fail")
    assert answer.status == 500
    if "UvicornWorker" not in slot.log.read_text():
        pytest.skip("Gunicorn 27's asgi worker logs it at debug level only, without the traceback")
    time.sleep(0.5)
    log = slot.log.read_text()
    assert "Traceback" in log and "RuntimeError: the example's deliberate failure" in log, log[-2000:]


@needs_nginx
def test_a_stop_lets_an_open_websocket_finish_then_closes_it(site: int, slot: Slot) -> None:
    """What an open websocket sees when its slot stops (the old slot, after a switch): Gunicorn's
    asgi worker keeps serving it for the graceful timeout, then cuts it; uvicorn's worker closes
    it at once with 1012 (service restart)."""
    uvicorn = "UvicornWorker" in slot.log.read_text()
    with websocket(site) as ws:
        assert ws.recv(timeout=5).startswith("hello from")
        stopped = time.monotonic()
        slot.master.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        if uvicorn:
            with pytest.raises(ConnectionClosed) as closed:
                ws.send("after the stop")
                ws.recv(timeout=5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
        else:
            ws.send("during the graceful timeout")
            assert ws.recv(timeout=5) == "during the graceful timeout"
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=10)
            assert time.monotonic() - stopped >= 2.5
    assert slot.master.wait(timeout=10) == 0
    # A new connection has nothing behind Nginx to take it.
    with pytest.raises(InvalidStatus):
        websocket(site)
