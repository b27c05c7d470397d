"""Bad input stops the run before anything on a host changes, with a message that names the
variable, the value and what is allowed. Each case is checked against a real run of
playbooks/deploy.yml.

The first play checks every role's input and reports every problem at once, so the cases it
refuses share runs: cases whose values do not get in each other's way go into one run (first
fit, in the order below), and each still asserts its own fragments against that run's output
and the hosts' fingerprint. A case refused later, on a host (the build, the import gate, the
Gunicorn configuration's check, the process manager in place), stops the run where it fails,
so it has a run of its own."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass

import pytest
import testinfra
from conftest import HOSTS, PORTS, SUPERVISOR, deploy, fetch, fingerprint
from gunship_testkit import APP, APP_SERVER, UWSGI, self_signed

# The checks do not depend on the platform: the runs go to one host of the scenario (the last),
# and every host's fingerprint is compared. Half the work on a two-host scenario.
CHECKED_HOST = list(PORTS)[-1]

CERT, KEY = self_signed()
OTHER_CERT, _ = self_signed()


@dataclass(frozen=True)
class Case:
    extra_vars: dict
    fragments: list[str]  # each must be in the run's output
    late: bool = False  # refused on a host, after the checks: a run of its own
    keeps: tuple[str, ...] = ()  # variables its message needs at the scenario's value
    manager: bool = False  # the outcome depends on the process manager
    server: str = ""  # the app server whose settings it checks ("": any)


OTHER_MANAGER = "systemd" if SUPERVISOR else "supervisor"
CASES: dict[str, Case] = {}
if SUPERVISOR:  # the supervisor role's checks run only when it is the process manager
    CASES["a log size supervisord cannot read"] = Case(
        {"supervisor_log_max_bytes": "10 megs"},
        ['supervisor_log_max_bytes is "10 megs"', "a size such as 10MB"],
        keeps=("app_process_manager",),
        manager=True,
    )
    CASES["no time to stop"] = Case(
        {"supervisor_stop_margin": 0},
        ["supervisor_stop_margin is 0", "from 1 to 600"],
        keeps=("app_process_manager",),
        manager=True,
    )
if not SUPERVISOR:  # the systemd role's checks run only when it is the process manager
    CASES["sandbox overrides that are not a mapping"] = Case(
        {"systemd_sandbox_overrides": ["MemoryDenyWriteExecute=no"]},
        ['systemd_sandbox_overrides is ["MemoryDenyWriteExecute=no"]', "mapping of systemd directive names"],
        manager=True,
    )
CASES.update(
    {
        "missing app source": Case(
            {"app_source": "/nonexistent/app"},
            ['app_source (release_source) is "/nonexistent/app"', "pyproject.toml or setup.py"],
        ),
        "zero workers": Case(
            {"gunicorn_workers": 0},
            ["gunicorn_workers is 0", "whole number from 1 to 256"],
            server="gunicorn",
        ),
        "unknown worker class": Case(
            {"gunicorn_worker_class": "eventlet"},
            ['gunicorn_worker_class is "eventlet"', "choose sync", "gthread", "gevent"],
            server="gunicorn",
        ),
        "an ASGI worker class for a WSGI app": Case(
            {"gunicorn_worker_class": "asgi"},
            [
                'gunicorn_worker_class is "asgi", a worker class for ASGI apps, but app_interface is "wsgi"',
                "choose sync, gthread or gevent",
            ],
            keeps=("app_interface",),
            server="gunicorn",
        ),
        "an unknown app interface": Case(
            {"app_interface": "rsgi"},
            ['app_interface (release_app_interface) is "rsgi": choose wsgi', "or asgi"],
        ),
        "an ASGI app under uWSGI": Case(
            {"app_interface": "asgi"},
            ['app_interface is "asgi", but app_server is uwsgi', "uWSGI serves WSGI apps only"],
            server="uwsgi",
        ),
        "a stream path that is the whole site": Case(
            {"app_stream_paths": ["/events", "/"]},
            ['app_stream_paths (nginx_stream_paths) is ["/events", "/"]', "other than /"],
        ),
        "a stream timeout of zero": Case(
            {"app_stream_timeout": 0},
            ["app_stream_timeout (nginx_stream_timeout) is 0", "from 1 to 86400"],
        ),
        "zero uWSGI processes": Case(
            {"uwsgi_processes": 0, "uwsgi_max_processes": 10},
            ["uwsgi_processes is 0", "whole number from 1 to 256"],
            server="uwsgi",
        ),
        "a worker ceiling below the workers": Case(
            {"uwsgi_processes": 4, "uwsgi_max_processes": 3},
            ["uwsgi_max_processes is 3", "above uwsgi_processes (4)"],
            server="uwsgi",
        ),
        "uWSGI threads that are not a number": Case(
            {"uwsgi_threads": "many"},
            ['uwsgi_threads is "many"', "whole number from 1 to 1024"],
            server="uwsgi",
        ),
        "a worker class only Gunicorn has, under uWSGI": Case(
            {"gunicorn_worker_class": "gevent"},
            [
                "gunicorn_worker_class is set, but app_server is uwsgi",
                'gunicorn_worker_class "gevent" is a worker class only Gunicorn has',
            ],
            server="uwsgi",
        ),
        "an unknown app server": Case(
            {"app_server": "waitress"},
            ['playbook: app_server is "waitress": choose gunicorn or uwsgi'],
            late=True,  # the app server's own checks are skipped: a run of its own
        ),
        "port out of range": Case(
            {"app_http_port": 70000},
            ["app_http_port (nginx_http_port) is 70000", "from 1 to 65535"],
        ),
        "threads without gthread": Case(
            {"gunicorn_threads": 4},
            [
                'gunicorn_threads is 4 with gunicorn_worker_class "sync"',
                "Set gunicorn_worker_class to gthread",
            ],
            keeps=("gunicorn_worker_class",),
            server="gunicorn",
        ),
        "app name with capitals": Case(
            {"app_name": "Shop_App"},
            ['app_name (python_app_name) is "Shop_App"', "lowercase letters"],
        ),
        "malformed wsgi callable": Case(
            {"app_wsgi": "gunship_example:"},
            ['app_wsgi (release_wsgi_app) is "gunship_example:"', "module:create_app()"],
        ),
        "TLS on without a certificate": Case(
            {"app_tls": True},
            ["app_tls is on but app_tls_certificate (nginx_tls_certificate) is empty", "PEM text"],
            keeps=("app_tls_certificate", "app_tls_certificate_key"),
        ),
        "a certificate that is not PEM": Case(
            {"app_tls": True, "app_tls_certificate": "my-certificate", "app_tls_certificate_key": KEY},
            ["app_tls_certificate (nginx_tls_certificate) is not a PEM certificate"],
        ),
        "a certificate and a key that are not a pair": Case(
            {"app_tls": True, "app_tls_certificate": OTHER_CERT, "app_tls_certificate_key": KEY},
            ["app_tls_certificate (nginx_tls_certificate", "are not a pair"],
        ),
        "the HTTPS port on the HTTP port": Case(
            {
                "app_tls": True,
                "app_tls_certificate": CERT,
                "app_tls_certificate_key": KEY,
                "app_https_port": 80,
            },
            ["app_https_port (nginx_https_port) is 80", "other than the HTTP port (80)"],
            keeps=("app_http_port",),
        ),
        "answering only load balancers where there are none": Case(
            {"app_lb_only": True},
            ["app_lb_only (nginx_only_trusted_proxies) is on but there are no load balancers"],
        ),
        "an app host without a port": Case(
            {"nginx_upstream_servers": [{"address": "app1", "port": 0}]},
            ['nginx_upstream_servers is [{"address": "app1", "port": 0}]', "a port from 1 to 65535"],
        ),
        "a retry condition Nginx does not know": Case(
            {"nginx_proxy_next_upstream": "error sometimes"},
            ['nginx_proxy_next_upstream is "error sometimes"', "choose from error, timeout"],
        ),
        "HSTS without TLS": Case(
            {"nginx_hsts": True},
            ["nginx_hsts is true but app_tls is off"],
            keeps=("app_tls",),
        ),
        "TLS 1.0 among the protocols": Case(
            {"nginx_tls_protocols": "TLSv1 TLSv1.2"},
            ['nginx_tls_protocols is "TLSv1 TLSv1.2"', "TLS 1.0 and 1.1 are broken"],
        ),
        "a rate limit that is not a rate": Case(
            {"nginx_limit_req_rate": "fast"},
            ['nginx_limit_req_rate is "fast"', "10r/s"],
        ),
        "a security header value with a quote": Case(
            {"nginx_security_headers": {"X-Frame-Options": 'DE"NY'}},
            ["nginx_security_headers is", "without double quotes"],
        ),
        "no time for slow headers": Case(
            {"nginx_client_header_timeout": 0},
            ["nginx_client_header_timeout is 0", "each at least 1"],
        ),
        "no server names": Case(
            {"app_server_names": []},
            ["app_server_names (nginx_server_names) is []", 'release_health_host is ""'],
        ),
        "an empty server name": Case(
            {"app_server_names": ""},
            ['app_server_names (nginx_server_names) is ""', "or one name as a string"],
        ),
        "a server name with a space": Case(
            {"app_server_names": ["localhost", "shop example.com"]},
            ['app_server_names (nginx_server_names) has ["shop example.com"]', "without spaces"],
        ),
        "a health path without its slash": Case(
            {"app_health_path": "healthz"},
            ['app_health_path (release_health_path) is "healthz"', "starting with a slash"],
        ),
        "no time for the health check": Case(
            {"release_health_timeout": 0},
            ["release_health_timeout is 0", "from 1 to 600"],
        ),
        "a negative warm time": Case(
            {"release_warm_seconds": -5},
            ["release_warm_seconds is -5", "from 0"],
        ),
        "keeping one release": Case(
            {"release_keep_releases": 1},
            ["release_keep_releases is 1", "at least 2"],
        ),
        "threads that are not a number": Case(
            {"gunicorn_worker_class": "gthread", "gunicorn_threads": "many"},
            ["gunicorn_threads", 'gunicorn_threads is "many"', "whole number from 1 to 1024"],
            server="gunicorn",
        ),
        "an unknown log level": Case(
            {"gunicorn_loglevel": "verbose"},
            ['gunicorn_loglevel is "verbose"', "choose debug, info"],
            server="gunicorn",
        ),
        "a hook without its command": Case(
            {"release_hooks_before_switch": [{"name": "Migrate the database"}]},
            ['release_hooks_before_switch is [{"name": "Migrate the database"}]', "a list of {name, command"],
        ),
        "an environment value over two lines": Case(
            {"app_env": {"GUNSHIP_SECRET_TOKEN": "line one\nline two"}},
            ['app_env (release_env) has values under ["GUNSHIP_SECRET_TOKEN"]', "single line"],
        ),
        "an environment name with a dash": Case(
            {"app_env": {"GUNSHIP_SECRET_TOKEN": "molecule-secret-value", "MY-VAR": "x"}},
            ['app_env (release_env) has names ["MY-VAR"] that are not environment variable names'],
        ),
        "shared directories outside shared/ or over the environment file": Case(
            {"app_shared_dirs": ["data", "../etc", "/var/lib/shop", "env", "data/"]},
            ['app_shared_dirs (release_shared_dirs) has ["../etc", "/var/lib/shop", "env", "data/"]'],
        ),
        "shared directories that are not a list": Case(
            {"app_shared_dirs": "data"},
            ['app_shared_dirs (release_shared_dirs) is "data": set a list'],
        ),
        "shared directories others can read": Case(
            {"release_shared_dir_mode": "0755"},
            ['release_shared_dir_mode is "0755"', "gives others nothing"],
        ),
        "collecting static files and a static directory": Case(
            {"app_static_collect": "django-admin collectstatic --noinput"},
            [
                'app_static_collect (release_static_collect) is "django-admin collectstatic --noinput" and',
                "Choose one",
            ],
            keeps=("app_static_dir",),
        ),
        "a collect command that is not a string": Case(
            {"app_static_collect": ["collectstatic"], "app_static_dir": ""},
            ['app_static_collect (release_static_collect) is ["collectstatic"]: set it to a shell command'],
        ),
        "an unknown process manager": Case(
            {"app_process_manager": "runit"},
            [
                'playbook: app_process_manager is "runit": choose systemd or supervisor',
                "the default is systemd",
            ],
            late=True,  # the process manager's own checks are skipped: a run of its own
        ),
        # Refused later, on a host or while building.
        "wsgi module the app lacks": Case(
            {"app_wsgi": "shop.wsgi:app"},
            ['app_wsgi (release_wsgi_app) is "shop.wsgi:app"', '["gunship_example"]'],
            late=True,
        ),
        "an extra the app does not declare": Case(
            {"app_extras": ["server"]},
            [
                'app_extras (release_extras) is ["server"], but the wheel built from',
                'no extra ["server"]; it provides []',
            ],
            late=True,
        ),
        "gevent worker without what it needs": Case(
            {"gunicorn_worker_class": "gevent", "gunicorn_gevent_package": "gevent"},
            ["Write Gunicorn's configuration", "No module named 'packaging'"],
            late=True,
            server="gunicorn",
        ),
        "an option uWSGI does not know": Case(
            {"uwsgi_settings": {"harakiri-verbos": True}},
            ["Write uWSGI's configuration", "unknown config directive: harakiri-verbos"],
            late=True,
            server="uwsgi",
        ),
        "wsgi callable that does not import": Case(
            {"app_wsgi": "gunship_example:make_app()"},
            ["'gunship_example:make_app()' does not import", "has no attribute 'make_app'"],
            late=True,
            manager=True,
        ),
        # The app runs under one process manager; a deploy asking for the other is refused on the
        # host, before the lock, with the app as it was.
        "moving the running app to the other process manager": Case(
            {"app_process_manager": OTHER_MANAGER},
            [
                f'app_process_manager is "{OTHER_MANAGER}", but gunship-example already runs on',
                f"as {APP_SERVER} under {'supervisor' if SUPERVISOR else 'systemd'}",
                "does not move",
            ],
            late=True,
            manager=True,
        ),
    }
)


def in_the_way(a: Case, b: Case) -> bool:
    """Whether two cases cannot share a run: a variable set to two values, or set by one while
    the other's message needs it at the scenario's value."""
    return (
        any(a.extra_vars[name] != b.extra_vars[name] for name in a.extra_vars.keys() & b.extra_vars.keys())
        or bool(a.extra_vars.keys() & set(b.keeps))
        or bool(b.extra_vars.keys() & set(a.keeps))
    )


def pack(cases: dict[str, Case]) -> list[list[str]]:
    """The runs: each a list of case names. A case the checks refuse joins the first run with
    room for it; a late one runs alone."""
    runs: list[list[str]] = []
    for name, case in cases.items():
        fits = [
            run
            for run in runs
            if not case.late and not cases[run[0]].late and not any(in_the_way(case, cases[n]) for n in run)
        ]
        if fits:
            fits[0].append(name)
        else:
            runs.append([name])
    return runs


# Only the cases of the scenario's app server (its role's checks run, the other's do not).
CASES = {name: case for name, case in CASES.items() if case.server in ("", APP_SERVER)}
RUNS = pack(CASES)
RUN_OF = {name: index for index, run in enumerate(RUNS) for name in run}
# Under supervisor or uWSGI only what depends on the process manager or the app server runs
# again, and one shared run of the checks (the first: the scenario's own cases come first); the
# default scenario covers the rest.
SELECTED = {
    name
    for name, case in CASES.items()
    if not (SUPERVISOR or UWSGI) or case.manager or case.server or RUN_OF[name] == 0
}


@dataclass
class Outcome:
    run: subprocess.CompletedProcess[str]
    fingerprints: tuple[list[str], list[str]]  # before, after
    served: tuple[dict, dict]  # each container's /version, before and after

    @property
    def output(self) -> str:
        return self.run.stdout + self.run.stderr


def served() -> dict[str, object]:
    """Each container's /version through Nginx, or the error that came instead."""
    answers: dict[str, object] = {}
    for name in PORTS:
        try:
            answers[name] = fetch(name, "/version").json()
        except (OSError, ValueError) as error:
            answers[name] = repr(error)
    return answers


@pytest.fixture(scope="module")
def nodes() -> list[testinfra.host.Host]:
    return [testinfra.get_host(spec) for spec in HOSTS]


@pytest.fixture(scope="module")
def outcomes(nodes: list[testinfra.host.Host]):
    """The outcome of run `index` of RUNS: deployed with every one of its cases' values, once."""
    done: dict[int, Outcome] = {}

    def outcome(index: int) -> Outcome:
        if index not in done:
            extra_vars = {k: v for name in RUNS[index] for k, v in CASES[name].extra_vars.items()}
            before, served_before = [fingerprint(node) for node in nodes], served()
            run = deploy("--extra-vars", json.dumps(extra_vars), limit=CHECKED_HOST)
            done[index] = Outcome(
                run, (before, [fingerprint(node) for node in nodes]), (served_before, served())
            )
        return done[index]

    return outcome


def case_param(name: str) -> pytest.param:
    skip = pytest.mark.skip(
        reason="does not depend on the process manager or app server: the default scenario runs it"
    )
    return pytest.param(name, id=name, marks=() if name in SELECTED else skip)


@pytest.mark.parametrize("name", [case_param(name) for name in CASES])
def test_bad_value_is_refused_and_hosts_are_untouched(outcomes, name: str) -> None:
    outcome = outcomes(RUN_OF[name])
    shared = (
        f" (in one run with {len(RUNS[RUN_OF[name]]) - 1} other cases)" if len(RUNS[RUN_OF[name]]) > 1 else ""
    )
    assert outcome.run.returncode != 0, outcome.output
    for fragment in CASES[name].fragments:
        assert fragment in outcome.output, f"{name}{shared}: {fragment!r} not in:\n{outcome.output}"
    assert outcome.served[1] == outcome.served[0], outcome.output
    before, after = outcome.fingerprints
    assert after == before


UNITS = " ".join(f"/etc/systemd/system/{APP_SERVER}-{APP}@.{kind}" for kind in ("socket", "service"))


@pytest.mark.skipif(SUPERVISOR, reason="systemd units; supervisor's programs have their own check")
def test_a_unit_that_fails_its_check_is_never_installed(nodes: list[testinfra.host.Host], tmp_path) -> None:
    """A service unit systemd-analyze refuses stops the run with the reason, the installed units
    stay; run again unchanged, it is checked again (a staged pair that failed is not kept)."""
    broken = tmp_path / "broken.service.j2"
    broken.write_text(
        "[Unit]\nRequires={{ systemd_unit }}@%i.socket\n[Service]\nExecStart=/nonexistent/gunicorn\n"
    )
    installed = [node.check_output(f"sha256sum {UNITS}") for node in nodes]
    served_before = {name: fetch(name, "/version").json() for name in PORTS}

    for attempt in (1, 2):
        run = deploy(
            "--extra-vars", json.dumps({"systemd_service_template": str(broken)}), limit=CHECKED_HOST
        )
        output = run.stdout + run.stderr
        assert run.returncode != 0, f"attempt {attempt}: {output}"
        assert "do not pass systemd-analyze verify" in output, output
        assert "/nonexistent/gunicorn" in output, output
        assert [node.check_output(f"sha256sum {UNITS}") for node in nodes] == installed
        assert {name: fetch(name, "/version").json() for name in PORTS} == served_before

    # The usual template again: staged and checked anew, the same units as before.
    run = deploy(limit=CHECKED_HOST)
    assert run.returncode == 0, run.stdout + run.stderr
    assert [node.check_output(f"sha256sum {UNITS}") for node in nodes] == installed
