from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from gunship_example import create_app


@pytest.fixture
def client() -> FlaskClient:
    return create_app().test_client()


def test_index_links_the_stylesheet_from_static(client: FlaskClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert 'href="/static/style.css"' in page.get_data(as_text=True)


def test_stylesheet_is_packaged(client: FlaskClient) -> None:
    assert client.get("/static/style.css").status_code == 200


def test_healthz_answers_ok(client: FlaskClient) -> None:
    answer = client.get("/healthz")
    assert answer.status_code == 200
    assert answer.get_json() == {"status": "ok"}


def test_version_reports_package_version_and_release(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GUNSHIP_RELEASE_ID", "20261121T101500Z")
    body = client.get("/version").get_json()
    assert body["version"] == "1.0.0"
    assert body["release"] == "20261121T101500Z"


def test_cpu_work_is_deterministic(client: FlaskClient) -> None:
    first = client.get("/cpu?rounds=1000").get_json()
    second = client.get("/cpu?rounds=1000").get_json()
    assert first["digest"] == second["digest"]
    assert first["rounds"] == 1000


def test_io_sleeps_for_the_asked_duration(client: FlaskClient) -> None:
    assert client.get("/io?seconds=0.05").get_json() == {"slept": 0.05}


@pytest.mark.parametrize(
    "url",
    ["/cpu?rounds=-1", "/cpu?rounds=lots", "/cpu?rounds=999999999", "/io?seconds=31", "/io?seconds=x"],
)
def test_load_routes_refuse_out_of_range_sizes(client: FlaskClient, url: str) -> None:
    assert client.get(url).status_code == 400
