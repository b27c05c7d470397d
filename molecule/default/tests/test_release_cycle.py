"""New releases: a bumped version becomes a new release that is served; old ones are kept up
to release_keep_releases, never the live one or the one before it."""

from __future__ import annotations

import json
import os
import time

import pytest
import testinfra
from conftest import PORTS, deploy, fetch, live_record, release_versions, versioned_source
from gunship_testkit import LoadLoop, playbook


@pytest.fixture(scope="module")
def nodes() -> dict[str, testinfra.host.Host]:
    return {name: testinfra.get_host(f"podman://{name}") for name in PORTS}


@pytest.fixture(scope="module")
def second_release(nodes, tmp_path_factory):
    """Deploy version 1.1.0 over whatever is live; return what was live before."""
    before = {name: live_record(node) for name, node in nodes.items()}
    kept = {name: set(release_versions(node)) for name, node in nodes.items()}
    run = deploy(
        "--extra-vars",
        json.dumps({"app_source": str(versioned_source(tmp_path_factory.mktemp("src"), "1.1.0"))}),
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return before, kept


@pytest.mark.parametrize("name", list(PORTS))
def test_new_version_is_a_new_release_that_is_served(second_release, nodes, name: str) -> None:
    before, kept = second_release
    node = nodes[name]
    record = live_record(node)
    assert record["version"] == "1.1.0"
    assert record["id"] != before[name]["id"]
    assert record["previous"] == before[name]["id"]
    assert set(release_versions(node)) == kept[name] | {record["id"]}
    served = fetch(name, "/version").json()
    assert (served["version"], served["release"]) == ("1.1.0", record["id"])


def test_release_ids_are_the_same_on_every_host(second_release, nodes) -> None:
    assert len({live_record(node)["id"] for node in nodes.values()}) == 1


def test_pruning_keeps_the_live_and_previous_releases(second_release, nodes, tmp_path_factory) -> None:
    source = versioned_source(tmp_path_factory.mktemp("src"), "1.2.0")
    run = deploy("--extra-vars", json.dumps({"app_source": str(source), "release_keep_releases": 2}))
    assert run.returncode == 0, run.stdout + run.stderr
    for name, node in nodes.items():
        assert sorted(release_versions(node).values()) == ["1.1.0", "1.2.0"]
        assert live_record(node)["version"] == "1.2.0"
        assert fetch(name, "/version").json()["version"] == "1.2.0"


def test_a_deploy_and_a_rollback_under_load_fail_no_request(second_release, nodes, tmp_path_factory) -> None:
    """Traffic through Nginx on every host while a new release switches in and is rolled back:
    every request is answered, by the old version or the new."""
    source = versioned_source(tmp_path_factory.mktemp("src"), "1.3.0")
    with LoadLoop(list(PORTS.values())) as load:
        run = deploy("--extra-vars", json.dumps({"app_source": str(source)}))
        assert run.returncode == 0, run.stdout + run.stderr
        switched = sum(load.versions.values())
        rollback = playbook("rollback.yml", os.environ["MOLECULE_INVENTORY_FILE"])
        assert rollback.returncode == 0, rollback.stdout + rollback.stderr
        time.sleep(1)
    assert load.failures == [], load.failures[:5]
    assert load.versions["1.3.0"] > 0 and sum(load.versions.values()) > switched > 0, load.versions
    for name, node in nodes.items():
        assert live_record(node)["version"] == "1.2.0"
        assert fetch(name, "/version").json()["version"] == "1.2.0"


def test_check_mode_shows_what_would_change_and_changes_nothing(nodes, tmp_path_factory) -> None:
    """`--check --diff`, as a user previews a change: the site's new line is shown, a new secret
    value never is, the new release is named, and nothing on the hosts changes."""
    site = "/etc/nginx/sites-available/gunship-example.conf"
    env = "/srv/gunship-example/shared/env"
    before = {
        name: (node.file(site).sha256sum, node.file(env).sha256sum, live_record(node)["id"])
        for name, node in nodes.items()
    }
    secret = "check-mode-secret-4f1c"
    source = versioned_source(tmp_path_factory.mktemp("src"), "1.9.0")
    changes = {
        "nginx_client_max_body_size": "23m",
        "app_env": {"GUNSHIP_SECRET_TOKEN": secret},
        "app_source": str(source),
    }
    run = deploy("--check", "--diff", "--extra-vars", json.dumps(changes))
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    assert "+    client_max_body_size 23m;" in output
    assert secret not in output
    words = " ".join(output.split())  # however the callback wraps the message
    assert "(gunship-example 1.9.0)" in words, output[-3000:]
    for name in nodes:
        assert f"{name} would install release " in words
    assert "changed=0" not in output
    after = {
        name: (node.file(site).sha256sum, node.file(env).sha256sum, live_record(node)["id"])
        for name, node in nodes.items()
    }
    assert after == before
    for name in nodes:
        assert fetch(name, "/version").json()["version"] != "1.9.0"
