"""Release hooks, after the release story and the secrets (pytest takes the files in name order):
commands a deploy runs in a new release before the switch (migrations) and after it (warming a
cache). A hook runs as the app runs: its user, its environment file, the release's venv first on
PATH, in the release. A redeploy of what is live runs none. A hook that fails before the switch
stops the deploy and the old release stays live; one that fails after the switch leaves the new
release live, and the run says so. Each failure names the hook and shows what it wrote. A load
loop sees not one request fail through all of it.

The tests build on each other, in file order, as the release story's do."""

from __future__ import annotations

import hashlib
import json
import secrets
import subprocess
from pathlib import Path

import pytest
import testinfra
from conftest import HTTP_PORT, app_environment, deploy, ok, refused, served
from gunship_testkit import APP, ROOT, LoadLoop, live_record, release_versions, versioned_source

# Where the hooks write what they see: a file per hook and run, under the host's /tmp (the app
# user may write there; a hook's transient unit shares it). Written 0600, as the app user.
MARK = secrets.token_hex(6)

# What a hook sees, written as JSON by the release's own Python: its release id, user, Python,
# working directory, where `current` points, and a digest of the app's secret (never the secret).
SEES = (
    "import hashlib, json, os, pwd, sys; json.dump(dict("
    "release=os.environ['GUNSHIP_RELEASE_ID'], user=pwd.getpwuid(os.getuid()).pw_name, "
    "prefix=sys.prefix, cwd=os.getcwd(), current=os.path.realpath(sys.argv[2]), "
    "secret=hashlib.sha256(os.environ.get('GUNSHIP_SECRET_TOKEN', '').encode()).hexdigest()), "
    "open(sys.argv[1], 'w'))"
)

LIVE: dict[str, str] = {}  # the release each step left live: "before", "hooked"
SOURCES: dict[str, Path] = {}  # the source tree of each version deployed here


def record_path(name: str) -> str:
    return f"/tmp/gunship-hook-{MARK}-{name}.json"


def recorder(name: str) -> dict[str, str]:
    """A hook that records what it sees in record_path(name)."""
    return {
        "name": f"Record what the {name} hook sees",
        "command": f'umask 077; python -c "{SEES}" {record_path(name)} {ROOT}/current',
    }


def recorded(node: testinfra.host.Host, name: str) -> dict | None:
    file = node.file(record_path(name))
    return json.loads(file.content_string) if file.exists else None


def release_dir(release: str) -> str:
    return f"{ROOT}/releases/{release}"


def hooked_deploy(
    inventory: str, tmp_path_factory: pytest.TempPathFactory, version: str, **hooks: list
) -> subprocess.CompletedProcess[str]:
    SOURCES[version] = versioned_source(tmp_path_factory.mktemp("src"), version)
    return deploy(inventory, SOURCES[version], **hooks)


@pytest.fixture(scope="module")
def load(node: testinfra.host.Host):
    """Two threads GET /version through Nginx while the hooks' deploys run."""
    LIVE["before"] = live_record(node)["id"]
    loop = LoadLoop([HTTP_PORT]).start()
    yield loop
    loop.stop()
    node.run(f"rm -f /tmp/gunship-hook-{MARK}-*")


def test_hooks_run_in_the_new_release_as_the_app_with_its_environment(
    load, inventory: str, node, tmp_path_factory
) -> None:
    old = LIVE["before"]
    out = ok(
        hooked_deploy(
            inventory,
            tmp_path_factory,
            "7.0.0",
            release_hooks_before_switch=[recorder("before")],
            release_hooks_after_switch=[recorder("after")],
        )
    )
    new = live_record(node)["id"]
    LIVE["hooked"] = new
    answer = served()
    assert new != old and (answer["version"], answer["release"]) == ("7.0.0", new)
    before, after = recorded(node, "before"), recorded(node, "after")
    assert before is not None and after is not None, out
    secret = app_environment(node)["GUNSHIP_SECRET_TOKEN"]
    for seen in (before, after):
        assert seen["release"] == new
        assert seen["user"] == APP
        assert seen["prefix"] == f"{release_dir(new)}/venv"
        assert seen["cwd"] == release_dir(new)
        assert seen["secret"] == hashlib.sha256(secret.encode()).hexdigest()
    # Before the switch the old release still serves; after it the new one does.
    assert before["current"] == release_dir(old)
    assert after["current"] == release_dir(new)
    assert node.file(record_path("before")).mode == 0o600


def test_a_redeploy_of_what_is_live_runs_no_hook(load, inventory: str, node) -> None:
    ok(
        deploy(
            inventory,
            SOURCES["7.0.0"],
            release_hooks_before_switch=[recorder("again-before")],
            release_hooks_after_switch=[recorder("again-after")],
        )
    )
    assert live_record(node)["id"] == LIVE["hooked"]
    assert recorded(node, "again-before") is None
    assert recorded(node, "again-after") is None


def test_a_hook_failing_before_the_switch_stops_the_deploy_with_the_old_release_live(
    load, inventory: str, node, tmp_path_factory
) -> None:
    live = LIVE["hooked"]
    migrate = {"name": "Migrate the database", "command": "echo 'could not reach the database' >&2; exit 3"}
    out = refused(
        hooked_deploy(
            inventory,
            tmp_path_factory,
            "8.0.0",
            release_hooks_before_switch=[migrate, recorder("skipped-before")],
            release_hooks_after_switch=[recorder("skipped-after")],
        )
    )
    assert 'The hook "Migrate the database" of release_hooks_before_switch failed on ' in out
    assert "(exit 3). It ran `echo 'could not reach the database' >&2; exit 3` as gunship-example" in out
    assert "could not reach the database" in out
    assert f"release {live} is still live" in out
    assert live_record(node)["id"] == live
    assert served()["release"] == live
    assert "8.0.0" not in release_versions(node).values()
    assert recorded(node, "skipped-before") is None  # the hooks after the failed one never ran
    assert recorded(node, "skipped-after") is None
    assert not node.file(f"{ROOT}/deploy.lock").exists


def test_a_hook_failing_after_the_switch_leaves_the_new_release_live(
    load, inventory: str, node, tmp_path_factory
) -> None:
    warm = {"name": "Warm the cache", "command": "echo 'the cache server is down' >&2; exit 4"}
    out = refused(hooked_deploy(inventory, tmp_path_factory, "9.0.0", release_hooks_after_switch=[warm]))
    new = live_record(node)["id"]
    assert new != LIVE["hooked"] and release_versions(node)[new] == "9.0.0"
    assert f"release {new} is live: the step after the switch failed" in out
    assert 'The hook "Warm the cache" of release_hooks_after_switch failed on ' in out
    assert "(exit 4)" in out
    assert "the cache server is down" in out
    answer = served()
    assert (answer["version"], answer["release"]) == ("9.0.0", new)
    assert not node.file(f"{ROOT}/deploy.lock").exists


def test_not_one_request_failed_through_the_hooks(load: LoadLoop) -> None:
    load.stop()
    assert load.failures == [], f"{len(load.failures)} of {load.requests} failed: {load.failures[:10]}"
    assert {"7.0.0", "9.0.0"} <= set(load.versions), load.versions
    assert "8.0.0" not in set(load.versions)  # the release whose hook failed never served
