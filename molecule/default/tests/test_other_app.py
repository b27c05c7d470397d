"""Another real app, from its own source tree, deployed with inventory variables only: a Django
project with a model and migrations, the admin, uploads and a SQLite database in shared
directories, and static files that collectstatic gathers into each release. Next to the example
app on the same hosts. Its life here: a deploy refused by the import gate, a first deploy whose
hook fails, a first release, a failed release that also changed the environment, a second
release, a rollback, and a redeploy of the second release's identical build."""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from pathlib import Path

import pytest
import testinfra
from conftest import PORTS, PROJECT, SUPERVISOR, deploy, fetch, master_pid, slot_name, slot_running
from gunship_testkit import Answer, playbook, post_form

DJANGO_APP = "gunship-django"
ROOT = f"/srv/{DJANGO_APP}"
HOST = "django.localhost"
MIGRATE = {"name": "Migrate the database", "command": "django-admin migrate --noinput"}
DJANGO = {
    "app_name": DJANGO_APP,
    "app_source": str(PROJECT / "examples" / "djangoapp"),
    "app_wsgi": "gunship_django.wsgi:application",
    # The project has no health endpoint: the gate takes "/" answering below 500. (The scenario's
    # inventory sets the example app's health path and static directory: overridden here.)
    "app_health_path": "",
    "app_static_dir": "",
    "app_static_collect": "django-admin collectstatic --noinput",
    "app_static_url": "/assets/",
    "app_shared_dirs": ["data", "media"],
    # Uploads (Django's MEDIA_ROOT) served by Nginx, at /media/ by default.
    "app_media_dir": "media",
    "app_server_names": [HOST],
    # Each host keeps its own SQLite file: the migration runs on every host, not run_once.
    "release_hooks_before_switch": [MIGRATE],
    # Recorded per release; both releases here have the same migrations, so rollbacks go through.
    "app_schema_command": "django-admin showmigrations --plan",
    "app_env": {
        "DJANGO_SETTINGS_MODULE": "gunship_django.settings",
        "DJANGO_SECRET_KEY": "molecule-django-secret",
        "DJANGO_ALLOWED_HOSTS": HOST,
    },
}
FAILING_HOOK = {
    "name": "Reach the payment gateway",
    "command": "printf 'connecting\\tport 443\\n' >&2; echo 'gateway unreachable' >&2; exit 3",
}


def with_settings(**changes: object) -> str:
    return json.dumps({**DJANGO, **changes})


def django(name: str, path: str) -> Answer:
    return fetch(name, path, host_header=HOST)


def versioned_django(tmp: Path, version: str) -> Path:
    """A copy of examples/djangoapp at `version`, whose stylesheet names the version."""
    source = tmp / f"djangoapp-{version}"
    shutil.copytree(
        PROJECT / "examples" / "djangoapp", source, ignore=shutil.ignore_patterns("*.egg-info", "__pycache__")
    )
    pyproject = source / "pyproject.toml"
    pyproject.write_text(re.sub(r'(?m)^version = ".*"$', f'version = "{version}"', pyproject.read_text()))
    css = source / "src" / "gunship_django" / "static" / "gunship_django" / "site.css"
    css.write_text(css.read_text() + f"\n/* release {version} */\n")
    return source


def lock_is_free(node: testinfra.host.Host) -> bool:
    return not node.file(f"{ROOT}/deploy.lock").exists


def site_enabled(node: testinfra.host.Host) -> bool:
    return node.file(f"/etc/nginx/sites-enabled/{DJANGO_APP}.conf").exists


def live_id(node: testinfra.host.Host) -> str:
    return node.check_output(f"readlink -f {ROOT}/current").rsplit("/", 1)[-1]


def master_environment(node: testinfra.host.Host) -> dict[str, str]:
    pid = master_pid(node, DJANGO_APP)
    raw = node.check_output(f"tr '\\0' '\\n' < /proc/{pid}/environ")
    return dict(line.split("=", 1) for line in raw.splitlines() if "=" in line)


def output(run) -> str:
    return run.stdout + run.stderr


@pytest.fixture(scope="module")
def nodes() -> dict[str, testinfra.host.Host]:
    return {name: testinfra.get_host(f"podman://{name}") for name in PORTS}


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("django")
    return {version: versioned_django(tmp, version) for version in ("0.4.1", "0.5.0")}


@pytest.fixture(scope="module")
def refused_without_secret(nodes):
    example_before = {name: fetch(name, "/version").json() for name in PORTS}
    env = {k: v for k, v in DJANGO["app_env"].items() if k != "DJANGO_SECRET_KEY"}
    run = deploy("--extra-vars", with_settings(app_env=env))
    return run, example_before


@pytest.fixture(scope="module")
def first_hook_failed(refused_without_secret, nodes):
    # With the project's ansible.cfg: the report is checked as a user reads it.
    return playbook(
        "deploy.yml",
        os.environ["MOLECULE_INVENTORY_FILE"],
        "--extra-vars",
        with_settings(release_hooks_before_switch=[MIGRATE, FAILING_HOOK]),
        users_config=True,
    )


@pytest.fixture(scope="module")
def deployed(first_hook_failed, sources, nodes):
    run = deploy("--extra-vars", with_settings(app_source=str(sources["0.4.1"])))
    assert run.returncode == 0, output(run)
    # A record with an uploaded file, on each host (each has its own database).
    for name in PORTS:
        answer = post_form(
            PORTS[name], "/notes", HOST, {"text": "kept"}, {"attachment": ("kept.txt", b"uploaded")}
        )
        assert answer.status == 201, answer.body
    return {name: live_id(node) for name, node in nodes.items()}


@pytest.fixture(scope="module")
def failed_with_new_env(deployed, sources, nodes):
    env = {**DJANGO["app_env"], "DJANGO_GREETING": "changed in a failed run"}
    hooks = [MIGRATE, FAILING_HOOK]
    run = deploy(
        "--extra-vars",
        with_settings(app_source=str(sources["0.5.0"]), app_env=env, release_hooks_before_switch=hooks),
    )
    return run


@pytest.fixture(scope="module")
def second_release(failed_with_new_env, sources, nodes):
    run = deploy("--extra-vars", with_settings(app_source=str(sources["0.5.0"])))
    assert run.returncode == 0, output(run)
    return {name: live_id(node) for name, node in nodes.items()}


@pytest.fixture(scope="module")
def rolled_back(second_release, nodes):
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    run = playbook("rollback.yml", inventory, "--extra-vars", json.dumps({"app_name": DJANGO_APP}))
    assert run.returncode == 0, output(run)
    return {name: live_id(node) for name, node in nodes.items()}


@pytest.fixture(scope="module")
def redeployed(rolled_back, sources, nodes):
    releases = {name: node.check_output(f"ls -1 {ROOT}/releases").split() for name, node in nodes.items()}
    run = deploy("--extra-vars", with_settings(app_source=str(sources["0.5.0"])))
    assert run.returncode == 0, output(run)
    return run, releases


def test_a_missing_secret_is_caught_by_the_gate(refused_without_secret, nodes) -> None:
    run, example_before = refused_without_secret
    assert run.returncode != 0
    assert "'gunship_django.wsgi:application' does not import" in output(run)
    assert "KeyError: 'DJANGO_SECRET_KEY'" in output(run)
    for name, node in nodes.items():
        assert not node.file(f"{ROOT}/current").exists
        assert node.check_output(f"ls -A {ROOT}/releases") == ""
        assert fetch(name, "/version").json() == example_before[name]


def test_a_failed_first_deploy_leaves_no_site_and_no_lock(first_hook_failed, nodes) -> None:
    run = first_hook_failed
    assert run.returncode != 0
    text = output(run)
    assert 'The hook "Reach the payment gateway" of release_hooks_before_switch failed' in text
    assert f"It ran `{FAILING_HOOK['command']}` as gunship-django:gunship-django" in text
    assert "gateway unreachable" in text
    # Printed as lines, not as one quoted string full of \n, wherever the report appears.
    reports = re.findall(r"Its last lines:(.*?)gateway unreachable", text, flags=re.DOTALL)
    assert reports
    assert all("\\n" not in report and "\\t" not in report for report in reports), reports
    assert all("connecting    port 443" in report for report in reports), reports
    for name, node in nodes.items():
        assert lock_is_free(node), node.check_output(f"cat {ROOT}/deploy.lock")
        assert not site_enabled(node)
        assert not node.file(f"{ROOT}/current").exists
        with pytest.raises(ConnectionError):  # the drop-all default server: no site for the name
            django(name, "/")


@pytest.mark.parametrize("name", list(PORTS))
def test_django_is_served_beside_the_example_app(deployed, name: str) -> None:
    page = django(name, "/")
    assert page.status == 200
    assert "Django behind Gunship" in page.body
    about = django(name, "/about").json()
    assert (about["framework"], about["version"]) == ("django", "0.4.1")
    assert fetch(name, "/healthz").json() == {"status": "ok"}  # the example app, untouched


@pytest.mark.parametrize("name", list(PORTS))
def test_the_admin_and_its_collected_css_are_served_by_nginx(deployed, nodes, name: str) -> None:
    login = django(name, "/admin/login/")
    assert login.status == 200
    assert "/assets/admin/css/base.css" in login.body
    marker = uuid.uuid4().hex
    css = django(name, f"/assets/admin/css/base.css?probe={marker}")
    assert css.status == 200
    assert css.headers["content-type"] == "text/css"
    assert "max-age=2592000" in css.headers["cache-control"]
    log = nodes[name].file(f"/var/log/nginx/{DJANGO_APP}.access.log").content_string
    [line] = [line for line in log.splitlines() if f"probe={marker}" in line]
    assert " upstream=- " in line  # Nginx answered from the release's files, not Gunicorn
    # Collected into the release, owned by root like the rest of it.
    static = nodes[name].file(f"{ROOT}/releases/{deployed[name]}/static/admin/css/base.css")
    assert (static.user, static.group, static.mode) == ("root", "root", 0o644)


@pytest.mark.parametrize("name", list(PORTS))
def test_shared_state_belongs_to_the_app_and_not_to_others(deployed, nodes, name: str) -> None:
    node = nodes[name]
    data, media = node.file(f"{ROOT}/shared/data"), node.file(f"{ROOT}/shared/media")
    assert (data.user, data.group, data.mode) == (DJANGO_APP, DJANGO_APP, 0o750)
    # Served by Nginx: the web server's group, inherited by what the app writes there.
    assert (media.user, media.group, media.mode) == (DJANGO_APP, "www-data", 0o2750)
    database = node.file(f"{ROOT}/shared/data/db.sqlite3")
    upload = node.file(f"{ROOT}/shared/media/notes/kept.txt")
    for made_by_the_app in (database, upload):
        assert made_by_the_app.user == DJANGO_APP
        assert made_by_the_app.mode & 0o007 == 0, oct(made_by_the_app.mode)


@pytest.mark.parametrize("name", list(PORTS))
def test_uploads_are_served_by_nginx_as_files_that_run_nothing(deployed, nodes, name: str) -> None:
    marker = uuid.uuid4().hex
    upload = django(name, f"/media/notes/kept.txt?probe={marker}")
    assert (upload.status, upload.body) == (200, "uploaded")
    assert "sandbox" in upload.headers["content-security-policy"]
    assert upload.headers["x-content-type-options"] == "nosniff"
    log = nodes[name].file(f"/var/log/nginx/{DJANGO_APP}.access.log").content_string
    [line] = [line for line in log.splitlines() if f"probe={marker}" in line]
    assert " upstream=- " in line
    assert nodes[name].file(f"{ROOT}/shared/media/notes/kept.txt").group == "www-data"


@pytest.mark.parametrize("name", list(PORTS))
def test_a_failed_release_that_changed_the_environment_keeps_files_and_live_app_agreed(
    failed_with_new_env, deployed, nodes, name: str
) -> None:
    assert failed_with_new_env.returncode != 0
    node = nodes[name]
    assert lock_is_free(node)
    assert live_id(node) == deployed[name]
    assert django(name, "/about").json()["version"] == "0.4.1"
    env_file = node.check_output(f"cat {ROOT}/shared/env")
    running = master_environment(node)
    assert ('DJANGO_GREETING="changed in a failed run"' in env_file) == (
        running.get("DJANGO_GREETING") == "changed in a failed run"
    ), (env_file, running.get("DJANGO_GREETING"))


@pytest.mark.parametrize("name", list(PORTS))
def test_records_and_uploads_survive_a_release_and_a_rollback(
    deployed, second_release, rolled_back, nodes, name: str
) -> None:
    assert rolled_back[name] == deployed[name]
    node = nodes[name]
    schemas = [
        json.loads(node.file(f"{ROOT}/releases/{release}/release.json").content_string)["schema"]
        for release in (deployed[name], second_release[name])
    ]
    assert schemas[0] == schemas[1]
    assert "[X]  notes.0001_initial" in schemas[0]["state"]  # the project's own migration, applied
    about = django(name, "/about").json()
    assert about["version"] == "0.4.1"
    notes = django(name, "/notes").json()["notes"]
    assert notes == [{"text": "kept", "attachment": "notes/kept.txt", "content": "uploaded"}]


@pytest.mark.parametrize("name", list(PORTS))
def test_each_release_serves_its_own_collected_assets(
    deployed, second_release, rolled_back, nodes, name: str
):
    node = nodes[name]
    css_of = {
        release: node.file(f"{ROOT}/releases/{release}/static/gunship_django/site.css").content_string
        for release in (deployed[name], second_release[name])
    }
    assert "release 0.5.0" in css_of[second_release[name]]
    assert "release 0.5.0" not in css_of[deployed[name]]
    # Rolled back: the first release's stylesheet again.
    assert django(name, "/assets/gunship_django/site.css").body == css_of[deployed[name]]


@pytest.mark.parametrize("name", list(PORTS))
def test_an_identical_build_switches_back_to_its_release(
    redeployed, second_release, nodes, name: str
) -> None:
    run, releases_before = redeployed
    node = nodes[name]
    assert "switching back to it (gated) instead of installing it again" in output(run)
    assert node.check_output(f"ls -1 {ROOT}/releases").split() == releases_before[name]
    assert live_id(node) == second_release[name]
    assert django(name, "/about").json()["version"] == "0.5.0"
    assert "release 0.5.0" in django(name, "/assets/gunship_django/site.css").body
    assert django(name, "/notes").json()["notes"][0]["content"] == "uploaded"


@pytest.mark.parametrize("name", list(PORTS))
def test_each_app_has_its_own_user_socket_and_units(deployed, nodes, name: str) -> None:
    node = nodes[name]
    for app in ("gunship-example", DJANGO_APP):
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
