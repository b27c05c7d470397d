"""Bad input stops the run before anything on a host changes, with a message that names the
variable, the value and what is allowed. Each case is a real run of playbooks/deploy.yml."""

from __future__ import annotations

import json

import pytest
import testinfra
from conftest import HOSTS, PORTS, deploy, fetch, fingerprint

# (extra vars, fragments the failure message must contain)
CASES = {
    "missing app source": (
        {"app_source": "/nonexistent/app"},
        ['app_source (release_source) is "/nonexistent/app"', "pyproject.toml or setup.py"],
    ),
    "zero workers": (
        {"gunicorn_workers": 0},
        ["gunicorn_workers is 0", "whole number from 1 to 256"],
    ),
    "unknown worker class": (
        {"gunicorn_worker_class": "eventlet"},
        ['gunicorn_worker_class is "eventlet"', "choose sync", "gthread", "gevent"],
    ),
    "port out of range": (
        {"app_http_port": 70000},
        ["app_http_port (nginx_http_port) is 70000", "from 1 to 65535"],
    ),
    "threads without gthread": (
        {"gunicorn_threads": 4},
        ['gunicorn_threads is 4 with gunicorn_worker_class "sync"', "Set gunicorn_worker_class to gthread"],
    ),
    "app name with capitals": (
        {"app_name": "Shop_App"},
        ['app_name (python_app_name) is "Shop_App"', "lowercase letters"],
    ),
    "malformed wsgi callable": (
        {"app_wsgi": "gunship_example:"},
        ['app_wsgi (release_wsgi_app) is "gunship_example:"', "module:create_app()"],
    ),
    "wsgi module the app lacks": (
        {"app_wsgi": "shop.wsgi:app"},
        ['app_wsgi (release_wsgi_app) is "shop.wsgi:app"', '["gunship_example"]'],
    ),
    "gevent worker without what it needs": (
        {"gunicorn_worker_class": "gevent", "gunicorn_gevent_package": "gevent"},
        ["Check that the worker class loads in the release", "No module named 'packaging'"],
    ),
    "wsgi callable that does not import": (
        {"app_wsgi": "gunship_example:make_app()"},
        ["'gunship_example:make_app()' does not import", "has no attribute 'make_app'"],
    ),
}


@pytest.fixture(scope="module")
def nodes() -> list[testinfra.host.Host]:
    return [testinfra.get_host(spec) for spec in HOSTS]


@pytest.mark.parametrize("extra_vars, fragments", list(CASES.values()), ids=list(CASES))
def test_bad_value_is_refused_and_hosts_are_untouched(
    nodes: list[testinfra.host.Host], extra_vars: dict, fragments: list[str]
) -> None:
    before = [fingerprint(node) for node in nodes]
    served_before = {name: fetch(name, "/version").json() for name in PORTS}

    run = deploy("--extra-vars", json.dumps(extra_vars))

    output = run.stdout + run.stderr
    assert run.returncode != 0, output
    for fragment in fragments:
        assert fragment in output, output
    assert [fingerprint(node) for node in nodes] == before
    assert {name: fetch(name, "/version").json() for name in PORTS} == served_before
