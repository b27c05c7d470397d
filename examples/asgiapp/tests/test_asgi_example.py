from __future__ import annotations

import pytest
from gunship_asgi_example import create_app
from starlette.testclient import TestClient


@pytest.fixture
def client() -> TestClient:
    return TestClient(create_app())


def test_index_links_the_stylesheet(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert 'href="/static/style.css"' in page.text


def test_stylesheet_is_packaged() -> None:
    from importlib.resources import files

    assert "body" in (files("gunship_asgi_example") / "static" / "style.css").read_text()


def test_healthz_answers_ok(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_version_reports_the_release(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUNSHIP_RELEASE_ID", "20261204T000000Z-abc")
    answer = client.get("/version").json()
    assert answer["version"] == "1.0.0"
    assert answer["release"] == "20261204T000000Z-abc"


def test_io_waits_and_refuses_a_bad_duration(client: TestClient) -> None:
    assert client.get("/io?seconds=0.01").json() == {"slept": 0.01}
    refused = client.get("/io?seconds=soon")
    assert refused.status_code == 400
    assert "seconds must be a number" in refused.text
    assert client.get("/io?seconds=31").status_code == 400


def test_events_stream_one_event_per_tick(client: TestClient) -> None:
    with client.stream("GET", "/events?count=3&interval=0") as answer:
        assert answer.headers["content-type"].startswith("text/event-stream")
        assert answer.headers["x-accel-buffering"] == "no"
        body = "".join(answer.iter_text())
    assert [line for line in body.splitlines() if line.startswith("data:")] == [
        "data: 1 dev",
        "data: 2 dev",
        "data: 3 dev",
    ]


def test_fail_answers_500_and_raises_for_the_server_to_log() -> None:
    client = TestClient(create_app(), raise_server_exceptions=False)
    assert client.get("/fail").status_code == 500
    with pytest.raises(RuntimeError, match="deliberate failure"):
        TestClient(create_app()).get("/fail")


def test_websocket_greets_then_echoes(client: TestClient) -> None:
    with client.websocket_connect("/ws") as socket:
        assert socket.receive_text() == "hello from dev"
        socket.send_text("ping")
        assert socket.receive_text() == "ping"
        socket.send_text("ünïcode")
        assert socket.receive_text() == "ünïcode"
