"""Gunship as a user's collection: built from this tree and installed into the empty collections
path of a project outside it (prepare.yml), then used the ways the README shows, each from the
project's directory with no Ansible setting but the project's ansible.cfg: the project's own play
composing the roles (deploy-app.yml, Molecule's converge), `ansible-playbook
gunship.deploy.deploy`, a site playbook importing it, and `ansible-playbook
gunship.deploy.rollback`. Every release is served through Nginx, and every task and module of
every run came from the installed collection.

Run in order (pytest keeps a module's order): each test starts from what the one before left."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import ansible
import pytest
import testinfra

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
from gunship_testkit import APP, BIN, PROJECT, fetch_port, live_record, release_versions, versioned_source

CONTAINER = "gunship-collection"
PORT = 18092
# The user's project (prepare.yml): the README's files from here, and the collections it installed.
README_FILES = Path(__file__).resolve().parents[1] / "project"
USER_PROJECT = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "project"
INSTALLED = USER_PROJECT / "collections" / "ansible_collections" / "gunship" / "deploy"
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
# Modules of ansible-core itself (command, setup...): neither the collection's nor this tree's.
ANSIBLE_CORE = Path(ansible.__file__).parent


@pytest.fixture(scope="module")
def node() -> testinfra.host.Host:
    return testinfra.get_host(f"podman://{CONTAINER}")


def as_the_user(*argv: str) -> subprocess.CompletedProcess[str]:
    """`argv` from the user's project directory, with no ANSIBLE_* setting from Molecule or the
    caller (where Ansible keeps its own files, ANSIBLE_HOME, excepted): the project's ansible.cfg
    is all the configuration there is."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("ANSIBLE_")}
    if "ANSIBLE_HOME" in os.environ:
        env["ANSIBLE_HOME"] = os.environ["ANSIBLE_HOME"]
    env["ANSIBLE_NOCOLOR"] = "1"
    return subprocess.run(
        [str(BIN / argv[0]), *argv[1:]],
        cwd=USER_PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def deploy(playbook: str, *args: str) -> str:
    """Run `playbook` (a file of the project, or the collection's by name) against the scenario's
    container; its output, with each task's file and each module's (-vvv)."""
    run = as_the_user("ansible-playbook", playbook, "-i", INVENTORY, "-vvv", *args)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    return run.stdout


def assert_all_from_the_collection(output: str, playbook: Path) -> None:
    """Every task of the run is the user's playbook's own or the installed collection's, and
    every module the collection's or ansible-core's: nothing came from this tree's roles,
    playbooks or plugins."""
    tasks = set(re.findall(r"^task path: (\S+):\d+$", output, flags=re.MULTILINE))
    modules = set(re.findall(r"^Using module file (\S+)$", output, flags=re.MULTILINE))
    assert {path for path in tasks if not path.startswith(f"{INSTALLED}/")} <= {str(playbook)}
    assert {path for path in modules if not path.startswith((f"{INSTALLED}/", f"{ANSIBLE_CORE}/"))} == set()
    # The roles ran, and Gunship's own module.
    assert any(path.startswith(f"{INSTALLED}/roles/release/") for path in tasks), sorted(tasks)
    assert f"{INSTALLED}/plugins/modules/gunship_files.py" in modules, sorted(modules)


def served_release(node: testinfra.host.Host) -> dict:
    """The live release as Nginx serves it on 127.0.0.1:PORT: its version, and its id as the page
    names it, which must be the host's live release."""
    page = fetch_port(PORT, "/")
    assert page.status == 200, page.body
    live = live_record(node, APP)
    assert f'<span id="release">{live["id"]}</span>' in page.body, page.body
    assert fetch_port(PORT, "/version").json()["version"] == live["version"]
    return live


def test_the_collection_is_installed_in_the_projects_collections_path_only() -> None:
    run = as_the_user("ansible-galaxy", "collection", "list", "gunship.deploy", "--format", "json")
    assert run.returncode == 0, run.stderr
    version = json.loads((INSTALLED / "MANIFEST.json").read_text())["collection_info"]["version"]
    assert json.loads(run.stdout) == {str(INSTALLED.parents[1]): {"gunship.deploy": {"version": version}}}


def test_the_projects_play_composing_the_roles_serves_the_example(node) -> None:
    live = served_release(node)
    assert live["version"] == "1.0.0"
    # The host's release tool is the collection's copy.
    installed_tool = node.file("/usr/local/sbin/gunship-release").content_string
    assert installed_tool == (INSTALLED / "roles" / "release" / "files" / "gunship_release.py").read_text()


def test_the_composing_play_again_changes_nothing_and_runs_from_the_collection(node) -> None:
    before = live_record(node, APP)["id"]
    output = deploy("deploy-app.yml")
    assert re.search(rf"^{CONTAINER}\s+: ok=\d+\s+changed=0\s", output, flags=re.MULTILINE), output[-2000:]
    assert_all_from_the_collection(output, USER_PROJECT / "deploy-app.yml")
    assert served_release(node)["id"] == before


def test_the_deploy_playbook_by_name_deploys_a_new_release(node, tmp_path_factory) -> None:
    before = live_record(node, APP)["id"]
    source = versioned_source(tmp_path_factory.mktemp("src"), "1.1.0")
    output = deploy("gunship.deploy.deploy", "--extra-vars", json.dumps({"app_source": str(source)}))
    assert_all_from_the_collection(output, INSTALLED / "playbooks" / "deploy.yml")
    live = served_release(node)
    assert live["version"] == "1.1.0" and live["id"] != before


def test_a_site_playbook_importing_the_deploy_playbook_deploys_another(node, tmp_path_factory) -> None:
    before = live_record(node, APP)["id"]
    source = versioned_source(tmp_path_factory.mktemp("src"), "1.2.0")
    output = deploy("site.yml", "--extra-vars", json.dumps({"app_source": str(source)}))
    # site.yml's only task is the import: every task ran from the collection's deploy.yml.
    assert_all_from_the_collection(output, INSTALLED / "playbooks" / "deploy.yml")
    live = served_release(node)
    assert live["version"] == "1.2.0" and live["id"] != before


def test_the_rollback_playbook_by_name_goes_back_to_the_release_before(node) -> None:
    (previous,) = (rid for rid, version in release_versions(node, APP).items() if version == "1.1.0")
    output = deploy("gunship.deploy.rollback")
    tasks = set(re.findall(r"^task path: (\S+):\d+$", output, flags=re.MULTILINE))
    assert tasks and tasks <= {str(INSTALLED / "playbooks" / "rollback.yml")}, sorted(tasks)
    live = served_release(node)
    assert live["id"] == previous


@pytest.mark.parametrize("name", ["ansible.cfg", "site.yml", "deploy-app.yml"])
def test_the_readme_shows_the_files_this_scenario_runs(name: str) -> None:
    assert (README_FILES / name).read_text() in (PROJECT / "README.md").read_text()
