"""deploy.yml's checks, run for real on the control node: its first two plays (the checks, nothing
that changes a host) against this machine over a local connection, with the example app's
settings. Each run stops with every role's problems at once, one per line, each naming the
variable, the value and what is allowed; a role run on its own still stops on its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

SETTINGS = {
    "app_name": "gunship-example",
    "app_source": str(PROJECT / "examples" / "flaskapp"),
    "app_wsgi": "gunship_example:create_app()",
    "app_static_dir": "gunship_example/static",
    "app_server_names": ["localhost", "127.0.0.1"],
    "app_env": {"GUNSHIP_SECRET_TOKEN": "input-checks-secret"},
}


def checks_playbook(root: Path) -> Path:
    """deploy.yml's checking plays, as they are, in a playbook beside the project's group_vars.
    Run as the current user: the checks read and change nothing that needs root."""
    plays = yaml.safe_load((PROJECT / "playbooks" / "deploy.yml").read_text())
    checks = [play for play in plays if play["name"].startswith("Check ")]
    assert len(checks) == 2, [play["name"] for play in plays]
    for play in checks:
        play["become"] = False
    (root / "playbooks").mkdir(parents=True)
    for shared in ("group_vars", "tasks"):  # the variables and the tasks files the plays read
        (root / "playbooks" / shared).symlink_to(PROJECT / "playbooks" / shared)
    playbook = root / "playbooks" / "checks.yml"
    playbook.write_text(yaml.safe_dump(checks, sort_keys=False))
    return playbook


def inventory(root: Path, lb: bool = False) -> Path:
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    hosts = {
        "app": {"hosts": {"app-here": local}},
        "loadbalancers": {"hosts": {"lb-here": local} if lb else {}},
    }
    (root / "inventory" / "group_vars").mkdir(parents=True, exist_ok=True)
    (root / "inventory" / "hosts.yml").write_text(json.dumps(hosts))
    (root / "inventory" / "group_vars" / "app.yml").write_text(json.dumps(SETTINGS))
    return root / "inventory"


def ansible_playbook(playbook: Path, inventory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANSIBLE_ROLES_PATH": str(PROJECT / "roles"), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run(
        [str(BIN / "ansible-playbook"), str(playbook), "-i", str(inventory), *args],
        cwd=PROJECT,  # the project's ansible.cfg
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


# Who prefixes a line of the report: the playbook's own checks and each role's.
REPORTERS = {"playbook", "python", "release", "gunicorn", "supervisor", "nginx"}


class Run:
    def __init__(self, result: subprocess.CompletedProcess[str]) -> None:
        self.returncode = result.returncode
        self.output = result.stdout + result.stderr

    def problems(self) -> list[str]:
        """The report's lines (`role: problem`), from the line after its heading to its end."""
        lines = self.output.splitlines()
        start = next((i for i, line in enumerate(lines) if "The input has " in line), None)
        if start is None:
            return []
        report = []
        for line in lines[start + 1 :]:
            if line.split(": ", 1)[0] not in REPORTERS:
                break
            report.append(line)
        return report


@pytest.fixture(scope="module")
def run_checks(tmp_path_factory: pytest.TempPathFactory):
    """Run the checks with these extra vars (once per distinct set, for the whole module)."""
    cache: dict[str, Run] = {}

    def run(extra_vars: dict, lb: bool = False) -> Run:
        key = json.dumps([extra_vars, lb], sort_keys=True)
        if key not in cache:
            root = tmp_path_factory.mktemp("checks")
            result = ansible_playbook(
                checks_playbook(root), inventory(root, lb), "--extra-vars", json.dumps(extra_vars)
            )
            cache[key] = Run(result)
        return cache[key]

    return run


# Values that each break one rule, together in one run; (variable: value, lines expected).
BAD = {
    "gunicorn_workers": 0,
    "app_http_port": 70000,
    "release_keep_releases": 1,
    "app_user": "root",
    "app_server_names": "",
    "app_env": {"GOOD_NAME": "kept out of the message", "MY-VAR": "x", "2FAST": "y"},
    "app_shared_dirs": [
        "data",
        "media/uploads",
        "media",
        "/etc",
        "../up",
        "a/../b",
        "env",
        "logs",
        "logs/",
        "a b",
    ],
    "release_shared_dir_mode": "0755",
    "app_static_collect": "django-admin collectstatic --noinput",  # with app_static_dir set
    "app_health_path": "healthz",
}
EXPECTED = {
    "workers (gunicorn)": "gunicorn: gunicorn_workers is 0: set a whole number from 1 to 256",
    "port (nginx)": "nginx: app_http_port (nginx_http_port) is 70000: set a TCP port",
    "keep releases (release)": "release: release_keep_releases is 1: set a whole number of at least 2",
    "app user (python)": 'python: app_user (python_app_user) is "root": it must be a system account name',
    "empty server names": 'nginx: app_server_names (nginx_server_names) is "": set a list of the names',
    "health host from empty server names": 'release: release_health_host is "": set the host name',
    "environment names": (
        'release: app_env (release_env) has names ["MY-VAR", "2FAST"] that are not environment variable names'
    ),
    "shared directories": (
        "release: app_shared_dirs (release_shared_dirs) has"
        ' ["/etc", "../up", "a/../b", "env", "logs/", "a b"]:'
    ),
    "shared directory mode": 'release: release_shared_dir_mode is "0755": set a quoted octal mode',
    "collect and a static directory": (
        'release: app_static_collect (release_static_collect) is "django-admin collectstatic --noinput" and'
        ' app_static_dir (release_static_dir) is "gunship_example/static": both fill'
    ),
    "health path": 'release: app_health_path (release_health_path) is "healthz": set a URL path',
}


def test_every_role_s_problems_are_reported_at_once_one_per_line(run_checks) -> None:
    run = run_checks(BAD)
    assert run.returncode != 0, run.output
    assert f"The input has {len(EXPECTED)} problem(s)" in run.output, run.output
    assert len(run.problems()) == len(EXPECTED), run.output


@pytest.mark.parametrize("expected", list(EXPECTED.values()), ids=list(EXPECTED))
def test_each_problem_names_the_variable_the_value_and_what_is_allowed(run_checks, expected: str) -> None:
    run = run_checks(BAD)
    assert [line for line in run.problems() if line.startswith(expected)], run.output


def test_only_the_bad_names_of_the_environment_are_shown(run_checks) -> None:
    run = run_checks(BAD)
    assert "GOOD_NAME" not in run.output


# Values that conflict with BAD's; each reported on its own line.
OTHER_BAD = {
    "app_server_names": ["shop.example.com", "bad name", "*.example.com"],
    "app_shared_dirs": 5,  # not a list: no Jinja error on the way to the message
    "release_shared_dir_mode": 488,  # 0750 without quotes, as YAML reads it
    "app_static_dir": "",
    "app_static_collect": ["collectstatic"],
    "app_env": ["SECRET=in a list"],
    "app_process_manager": "supervisor",  # the supervisor role's checks join in
    "supervisor_stop_margin": 0,
    "app_dot_paths": ["/.web/", "/.git/", "web/"],
    "app_requirements": [
        "psycopg[binary]>=3.2",
        "-r /etc/passwd",
        "--index-url=https://example.com",
        "./x",
        5,
    ],
    "app_extras": ["server", "two words"],
}
OTHER_EXPECTED = {
    "bad server name": 'nginx: app_server_names (nginx_server_names) has ["bad name"]: each name must be',
    "shared directories not a list": "release: app_shared_dirs (release_shared_dirs) is 5: set a list",
    "unquoted mode": "release: release_shared_dir_mode is 488: set a quoted octal mode",
    "collect command not a string": (
        'release: app_static_collect (release_static_collect) is ["collectstatic"]: set it to a shell command'
    ),
    "environment not a mapping": "release: app_env (release_env) is not a mapping",
    "supervisor's stop margin": "supervisor: supervisor_stop_margin is 0: set a whole number of seconds",
    "paths under a dot": (
        'nginx: app_dot_paths (nginx_app_dot_paths) is ["/.web/", "/.git/", "web/"]: set a list of distinct'
    ),
    "requirements that are options or paths": (
        'release: app_requirements (release_requirements) has [5, "-r /etc/passwd",'
        ' "--index-url=https://example.com", "./x"]: each must be a requirement'
    ),
    "extras": 'release: app_extras (release_extras) is ["server", "two words"]: set a list of the names',
}


@pytest.mark.parametrize("expected", list(OTHER_EXPECTED.values()), ids=list(OTHER_EXPECTED))
def test_other_refusals(run_checks, expected: str) -> None:
    run = run_checks(OTHER_BAD)
    assert run.returncode != 0, run.output
    assert [line for line in run.problems() if line.startswith(expected)], run.output


def test_an_environment_that_is_not_a_mapping_is_never_shown(run_checks) -> None:
    assert "in a list" not in run_checks(OTHER_BAD).output


def test_no_server_names_is_refused_by_name(run_checks) -> None:
    run = run_checks({"app_server_names": []})
    assert run.returncode != 0, run.output
    assert run.problems()[:2] == [
        'release: release_health_host is "": set the host name the health checks send (by default the'
        " first of app_server_names, which must not be empty).",
        "nginx: app_server_names (nginx_server_names) is []: set a list of the names the site answers to"
        " ([example.com, www.example.com]), or one name as a string.",
    ], run.output


def test_good_values_pass(run_checks) -> None:
    """One name as a string, shared directories (nested, with a trailing slash), a collect command
    instead of a static directory, no health path, and requirements and extras for the app."""
    run = run_checks(
        {
            "app_server_names": "shop.example.com",
            "app_shared_dirs": ["data", "media/uploads/", "media"],
            "release_shared_dir_mode": "0770",
            "app_static_dir": "",
            "app_static_collect": "django-admin collectstatic --noinput",
            "app_health_path": "",
            "app_requirements": ["psycopg[binary]>=3.2", "sentry-sdk", 'tzdata; sys_platform == "win32"'],
            "app_extras": ["server", "Server_Side"],
        }
    )
    # The checks also hold the control node to Debian 12 or 13; elsewhere that is the one problem.
    assert [p for p in run.problems() if " runs " not in p] == [], run.output
    if not run.problems():
        assert run.returncode == 0, run.output


def test_a_load_balancer_without_the_app_s_settings_is_refused(run_checks) -> None:
    run = run_checks({}, lb=True)  # the settings are in group_vars/app.yml only
    assert run.returncode != 0, run.output
    assert [
        p
        for p in run.problems()
        if p.startswith("playbook: app_name is not set for the load balancer lb-here")
    ]


def test_a_role_run_on_its_own_stops_on_its_own_bad_input(tmp_path: Path) -> None:
    """A playbook of one's own that includes a role directly: its main.yml checks first. In check
    mode, so that nothing on this machine could change even if it did not stop."""
    playbook = tmp_path / "gunicorn.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "Run the gunicorn role on its own",
                    "hosts": "app",
                    "gather_facts": True,
                    "roles": [
                        {"role": "gunicorn", "vars": {"gunicorn_app_name": "shop", "gunicorn_workers": 0}}
                    ],
                }
            ]
        )
    )
    run = Run(ansible_playbook(playbook, inventory(tmp_path), "--check"))
    assert run.returncode != 0, run.output
    assert "TASK [gunicorn : Report the problems with the gunicorn role's input]" in run.output, run.output
    assert "gunicorn_workers is 0: set a whole number from 1 to 256" in run.output, run.output
    assert "gunicorn : Create the Gunicorn configuration directories" not in run.output


def test_with_load_balancers_acme_is_theirs_and_checked_on_them(run_checks) -> None:
    """app_tls_acme on a cluster: the app hosts behind the balancer stay plain HTTP (no ACME check
    there); the balancer, which gets the certificate, refuses names no ACME server issues for."""
    run = run_checks({**SETTINGS, "app_tls_acme": True}, lb=True)
    assert run.returncode != 0, run.output
    refusals = [p for p in run.problems() if "but app_tls_acme is on" in p]
    assert refusals == [
        "nginx: app_server_names (nginx_server_names) has localhost, 127.0.0.1 but app_tls_acme is on:"
        " an ACME server issues certificates for DNS names that resolve to this site (www.example.com),"
        " not for a wildcard (the http-01 challenge cannot prove one), an IP address, localhost or a"
        " name without a dot. List the site's DNS names, or turn app_tls_acme off."
    ], run.output
    assert "PLAY [Check the load balancers' input before any host changes]" in run.output
