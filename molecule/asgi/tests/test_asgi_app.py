"""An ASGI app (examples/asgiapp) deployed with variables only, as its users see it through
Nginx: the page and its static files, a websocket echo, a server-sent-events stream, a failing
request's traceback in the journal; Gunicorn's own asgi worker in place of uvicorn's; a deploy
and a rollback under HTTP load with websockets open across them; and an ASGI app declared as
WSGI refused by the gate while the live release serves.

Run in order (pytest keeps a module's order): each test starts from what the one before left."""

from __future__ import annotations

import http.client
import json
import os
import sys
import time
from pathlib import Path

import pytest
import testinfra
from websockets.sync.client import ClientConnection, connect

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
from gunship_testkit import (
    LoadLoop,
    app_log_mark,
    app_log_since,
    fetch_port,
    live_record,
    master_pid,
    playbook,
    versioned_source,
    worker_pids,
)

APP = "gunship-asgi"
ROOT = f"/srv/{APP}"
CONTAINER = "gunship-asgi-trixie"
PORT = 18086


@pytest.fixture(scope="module")
def node() -> testinfra.host.Host:
    return testinfra.get_host(f"podman://{CONTAINER}")


def deploy(*args: str) -> None:
    run = playbook("deploy.yml", os.environ["MOLECULE_INVENTORY_FILE"], *args)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]


def websocket() -> ClientConnection:
    return connect(f"ws://127.0.0.1:{PORT}/ws", open_timeout=10, close_timeout=5)


def greeting(ws: ClientConnection) -> str:
    """The release that serves the websocket, from its first message."""
    text = ws.recv(timeout=10)
    assert text.startswith("hello from "), text
    return text.removeprefix("hello from ")


def echoes(ws: ClientConnection, text: str) -> bool:
    ws.send(text)
    return ws.recv(timeout=10) == text


def test_the_page_names_the_live_release_and_nginx_serves_the_stylesheet(node) -> None:
    page = fetch_port(PORT, "/")
    assert page.status == 200, page.body
    assert f'<span id="release">{live_record(node, APP)["id"]}</span>' in page.body
    assert page.headers["x-content-type-options"] == "nosniff"
    css = fetch_port(PORT, "/static/style.css")
    assert css.status == 200 and css.headers["content-type"] == "text/css"
    # Nginx answered it from the release: no upstream in its log line.
    access_log = node.file(f"/var/log/nginx/{APP}.access.log").content_string
    static_lines = [line for line in access_log.splitlines() if "/static/style.css HTTP/1.1" in line]
    assert static_lines and "upstream=- " in static_lines[-1]


def test_uvicorns_worker_serves_it_with_a_worker_per_core_and_one(node) -> None:
    conf = node.file(f"/etc/gunship/{APP}/gunicorn.conf.py").content_string
    assert 'worker_class = "uvicorn_worker.UvicornWorker"' in conf.splitlines()
    cores = int(node.check_output("nproc"))
    assert len(worker_pids(node, master_pid(node, APP))) == 2 * cores + 1
    assert fetch_port(PORT, "/healthz").json() == {"status": "ok"}


def test_a_websocket_echoes_through_nginx(node) -> None:
    with websocket() as ws:
        assert greeting(ws) == live_record(node, APP)["id"]
        assert echoes(ws, "ping")
        assert echoes(ws, "x" * 100_000)  # a message larger than Nginx's buffers


def test_server_sent_events_arrive_as_they_are_sent(node) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=15)
    connection.request("GET", "/events?count=3&interval=1", headers={"Host": "localhost"})
    answer = connection.getresponse()
    assert answer.status == 200
    assert answer.getheader("Content-Type").startswith("text/event-stream")
    started = time.monotonic()
    first = answer.readline().decode()
    waited = time.monotonic() - started
    rest = answer.read().decode()
    # Event 1 comes before the stream ends (two seconds later): nothing buffers it.
    assert first.startswith("id: 1") and waited < 1.5, (first, waited)
    release = live_record(node, APP)["id"]
    assert [line for line in rest.splitlines() if line.startswith("data:")] == [
        f"data: 1 {release}",
        f"data: 2 {release}",
        f"data: 3 {release}",
    ]


def test_a_failing_request_answers_500_and_its_traceback_is_in_the_journal(node) -> None:
    mark = app_log_mark(node, APP)
    assert fetch_port(PORT, "/fail").status == 500
    time.sleep(1)
    logged = app_log_since(node, mark, APP)
    assert "Traceback" in logged and "RuntimeError: the example's deliberate failure" in logged, logged


def test_gunicorns_own_asgi_worker_in_its_place(node) -> None:
    mark = app_log_mark(node, APP)
    deploy("--extra-vars", json.dumps({"gunicorn_worker_class": "asgi"}))
    assert "Using worker: asgi" in app_log_since(node, mark, APP)
    assert node.run(f"{ROOT}/current/venv/bin/python -c 'import gunicorn.workers.gasgi'").succeeded
    with websocket() as ws:
        assert greeting(ws) == live_record(node, APP)["id"]
        assert echoes(ws, "through Gunicorn's own worker")
    assert fetch_port(PORT, "/").status == 200


def test_a_deploy_and_a_rollback_under_load_fail_no_request_and_keep_open_websockets(
    node, tmp_path_factory
) -> None:
    """HTTP traffic through Nginx, and a websocket opened before the deploy: every request is
    answered; the websocket stays with the release that accepted it, the new release takes new
    connections, and after the rollback (to the slot still warm) both are still open."""
    before = live_record(node, APP)["id"]
    source = versioned_source(tmp_path_factory.mktemp("src"), "1.1.0", example="asgiapp")
    old = websocket()
    try:
        assert greeting(old) == before
        with LoadLoop([PORT]) as load:
            deploy("--extra-vars", json.dumps({"app_source": str(source)}))
            after = live_record(node, APP)
            assert after["version"] == "1.1.0" and after["id"] != before
            assert echoes(old, "still here after the switch")
            with websocket() as new:
                assert greeting(new) == after["id"]
                rollback = playbook("rollback.yml", os.environ["MOLECULE_INVENTORY_FILE"])
                assert rollback.returncode == 0, rollback.stdout + rollback.stderr
                assert echoes(old, "still here after the rollback")
                assert echoes(new, "and this one too")
                new.close()
                assert new.close_code == 1000  # a clean close, both ways
            time.sleep(1)
        assert load.failures == [], load.failures[:5]
        assert load.versions["1.1.0"] > 0 and load.versions["1.0.0"] > 0, load.versions
        assert live_record(node, APP)["id"] == before
        with websocket() as ws:
            assert greeting(ws) == before
    finally:
        old.close()


def test_an_asgi_app_declared_wsgi_is_refused_and_the_live_release_serves_on(node, tmp_path_factory) -> None:
    live = live_record(node, APP)["id"]
    source = versioned_source(tmp_path_factory.mktemp("src"), "1.2.0", example="asgiapp")
    run = playbook(
        "deploy.yml",
        os.environ["MOLECULE_INVENTORY_FILE"],
        "--extra-vars",
        json.dumps({"app_source": str(source), "app_interface": "wsgi"}),
    )
    output = run.stdout + run.stderr
    assert run.returncode != 0
    assert "'gunship_asgi_example:app' is an ASGI app" in output, output[-3000:]
    assert "set app_interface: asgi" in output
    assert live_record(node, APP)["id"] == live
    assert fetch_port(PORT, "/version").json()["release"] == live
    with websocket() as ws:
        assert greeting(ws) == live
