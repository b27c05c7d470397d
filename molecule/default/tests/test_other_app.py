"""Another real app, from its own source tree, deployed with inventory variables only:
a Django project that reads its settings and secret from the environment, next to the
example app on the same hosts."""

from __future__ import annotations

import json

import pytest
import testinfra
from conftest import PORTS, PROJECT, SUPERVISOR, deploy, fetch, slot_name, slot_running

DJANGO = {
    "app_name": "gunship-django",
    "app_source": str(PROJECT / "examples" / "djangoapp"),
    "app_wsgi": "gunship_django.wsgi:application",
    "app_static_dir": "gunship_django/static",
    "app_static_url": "/assets/",
    "app_server_names": ["django.localhost"],
    "app_health_path": "/about",  # the project has no /healthz; any cheap 200 will do
    "app_env": {
        "DJANGO_SETTINGS_MODULE": "gunship_django.settings",
        "DJANGO_SECRET_KEY": "molecule-django-secret",
        "DJANGO_ALLOWED_HOSTS": "django.localhost",
    },
}


@pytest.fixture(scope="module")
def nodes() -> dict[str, testinfra.host.Host]:
    return {name: testinfra.get_host(f"podman://{name}") for name in PORTS}


@pytest.fixture(scope="module")
def refused_without_secret(nodes):
    example_before = {name: fetch(name, "/version").json() for name in PORTS}
    env = {k: v for k, v in DJANGO["app_env"].items() if k != "DJANGO_SECRET_KEY"}
    run = deploy("--extra-vars", json.dumps({**DJANGO, "app_env": env}))
    return run, example_before


@pytest.fixture(scope="module")
def deployed(refused_without_secret, nodes):
    run = deploy("--extra-vars", json.dumps(DJANGO))
    assert run.returncode == 0, run.stdout + run.stderr
    return run


def test_a_missing_secret_is_caught_by_the_gate(refused_without_secret, nodes) -> None:
    run, example_before = refused_without_secret
    output = run.stdout + run.stderr
    assert run.returncode != 0
    assert "'gunship_django.wsgi:application' does not import" in output
    assert "KeyError: 'DJANGO_SECRET_KEY'" in output
    for name, node in nodes.items():
        assert not node.file("/srv/gunship-django/current").exists
        assert node.check_output("ls -A /srv/gunship-django/releases") == ""
        assert fetch(name, "/version").json() == example_before[name]


@pytest.mark.parametrize("name", list(PORTS))
def test_django_is_served_beside_the_example_app(deployed, name: str) -> None:
    page = fetch(name, "/", host_header="django.localhost")
    assert page.status == 200
    assert "Django behind Gunship" in page.body
    about = fetch(name, "/about", host_header="django.localhost").json()
    assert (about["framework"], about["version"]) == ("django", "0.3.0")
    css = fetch(name, "/assets/gunship_django/site.css", host_header="django.localhost")
    assert css.status == 200
    assert "max-age=2592000" in css.headers["cache-control"]
    assert fetch(name, "/healthz").json() == {"status": "ok"}  # the example app, untouched


@pytest.mark.parametrize("name", list(PORTS))
def test_each_app_has_its_own_user_socket_and_units(deployed, nodes, name: str) -> None:
    node = nodes[name]
    for app in ("gunship-example", "gunship-django"):
        slot = node.check_output(f"readlink /srv/{app}/slots/live")
        assert slot_running(node, slot_name(slot, app))
        sock = node.file(f"/run/{app}/{slot}.sock")
        if SUPERVISOR:  # Gunicorn binds it as the app; the directory admits the web server
            directory = node.file(f"/run/{app}")
            assert (sock.user, directory.user, directory.group, directory.mode) == (
                app,
                app,
                "www-data",
                0o750,
            )
        else:
            assert (sock.user, sock.group, sock.mode) == (app, "www-data", 0o660)
