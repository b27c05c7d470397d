"""Bad input stops the run before anything on a host changes, with a message that names the
variable, the value and what is allowed. Each case is a real run of playbooks/deploy.yml."""

from __future__ import annotations

import json

import pytest
import testinfra
from conftest import HOSTS, PORTS, SUPERVISOR, deploy, fetch, fingerprint
from gunship_testkit import self_signed

CERT, KEY = self_signed()
OTHER_CERT, _ = self_signed()

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
        ["Write Gunicorn's configuration", "No module named 'packaging'"],
    ),
    "wsgi callable that does not import": (
        {"app_wsgi": "gunship_example:make_app()"},
        ["'gunship_example:make_app()' does not import", "has no attribute 'make_app'"],
    ),
    "TLS on without a certificate": (
        {"app_tls": True},
        ["app_tls is on but app_tls_certificate (nginx_tls_certificate) is empty", "PEM text"],
    ),
    "a certificate that is not PEM": (
        {"app_tls": True, "app_tls_certificate": "my-certificate", "app_tls_certificate_key": KEY},
        ["app_tls_certificate (nginx_tls_certificate) is not a PEM certificate"],
    ),
    "a certificate and a key that are not a pair": (
        {"app_tls": True, "app_tls_certificate": OTHER_CERT, "app_tls_certificate_key": KEY},
        ["app_tls_certificate (nginx_tls_certificate", "are not a pair"],
    ),
    "the HTTPS port on the HTTP port": (
        {"app_tls": True, "app_tls_certificate": CERT, "app_tls_certificate_key": KEY, "app_https_port": 80},
        ["app_https_port (nginx_https_port) is 80", "other than the HTTP port (80)"],
    ),
    "answering only load balancers where there are none": (
        {"app_lb_only": True},
        ["app_lb_only (nginx_only_trusted_proxies) is on but there are no load balancers"],
    ),
    "an app host without a port": (
        {"nginx_upstream_servers": [{"address": "app1", "port": 0}]},
        ['nginx_upstream_servers is [{"address": "app1", "port": 0}]', "a port from 1 to 65535"],
    ),
    "a retry condition Nginx does not know": (
        {"nginx_proxy_next_upstream": "error sometimes"},
        ['nginx_proxy_next_upstream is "error sometimes"', "choose from error, timeout"],
    ),
    "HSTS without TLS": (
        {"nginx_hsts": True},
        ["nginx_hsts is true but app_tls is off"],
    ),
    "TLS 1.0 among the protocols": (
        {"nginx_tls_protocols": "TLSv1 TLSv1.2"},
        ['nginx_tls_protocols is "TLSv1 TLSv1.2"', "TLS 1.0 and 1.1 are broken"],
    ),
    "a rate limit that is not a rate": (
        {"nginx_limit_req_rate": "fast"},
        ['nginx_limit_req_rate is "fast"', "10r/s"],
    ),
    "a security header value with a quote": (
        {"nginx_security_headers": {"X-Frame-Options": 'DE"NY'}},
        ["nginx_security_headers is", "without double quotes"],
    ),
    "no time for slow headers": (
        {"nginx_client_header_timeout": 0},
        ["nginx_client_header_timeout is 0", "each at least 1"],
    ),
    "a health path without its slash": (
        {"app_health_path": "healthz"},
        ['app_health_path (release_health_path) is "healthz"', "starting with a slash"],
    ),
    "no time for the health check": (
        {"release_health_timeout": 0},
        ["release_health_timeout is 0", "from 1 to 600"],
    ),
    "a negative warm time": (
        {"release_warm_seconds": -5},
        ["release_warm_seconds is -5", "from 0"],
    ),
    "keeping one release": (
        {"release_keep_releases": 1},
        ["release_keep_releases is 1", "at least 2"],
    ),
    "threads that are not a number": (
        {"gunicorn_worker_class": "gthread", "gunicorn_threads": "many"},
        ["gunicorn_threads", 'gunicorn_threads is "many"', "whole number from 1 to 1024"],
    ),
    "an unknown log level": (
        {"gunicorn_loglevel": "verbose"},
        ['gunicorn_loglevel is "verbose"', "choose debug, info"],
    ),
    "sandbox overrides that are not a mapping": (
        {"gunicorn_sandbox_overrides": ["MemoryDenyWriteExecute=no"]},
        ['gunicorn_sandbox_overrides is ["MemoryDenyWriteExecute=no"]', "mapping of systemd directive names"],
    ),
    "a hook without its command": (
        {"release_hooks_before_switch": [{"name": "Migrate the database"}]},
        ['release_hooks_before_switch is [{"name": "Migrate the database"}]', "a list of {name, command"],
    ),
    "an environment value over two lines": (
        {"app_env": {"GUNSHIP_SECRET_TOKEN": "line one\nline two"}},
        ['app_env (release_env) has values under ["GUNSHIP_SECRET_TOKEN"]', "single line"],
    ),
}


CASES["an unknown process manager"] = (
    {"app_process_manager": "runit"},
    [
        'app_process_manager (release_process_manager) is "runit"',
        "choose systemd (the default) or supervisor",
    ],
)
# The app runs under one process manager; a deploy asking for the other is refused on the host,
# before the lock, with the app as it was.
OTHER_MANAGER = "systemd" if SUPERVISOR else "supervisor"
CASES["moving the running app to the other process manager"] = (
    {"app_process_manager": OTHER_MANAGER},
    [f'app_process_manager is "{OTHER_MANAGER}", but gunship-example already runs under', "does not move"],
)
if SUPERVISOR:  # the supervisor role's checks run only when it is the process manager
    CASES["a log size supervisord cannot read"] = (
        {"supervisor_log_max_bytes": "10 megs"},
        ['supervisor_log_max_bytes is "10 megs"', "a size such as 10MB"],
    )
    CASES["no time to stop"] = (
        {"supervisor_stop_margin": 0},
        ["supervisor_stop_margin is 0", "from 1 to 600"],
    )


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


UNITS = " ".join(f"/etc/systemd/system/gunicorn-gunship-example@.{kind}" for kind in ("socket", "service"))


@pytest.mark.skipif(SUPERVISOR, reason="systemd units; supervisor's programs have their own check")
def test_a_unit_that_fails_its_check_is_never_installed(nodes: list[testinfra.host.Host], tmp_path) -> None:
    """A service unit systemd-analyze refuses stops the run with the reason, the installed units
    stay; run again unchanged, it is checked again (a staged pair that failed is not kept)."""
    broken = tmp_path / "broken.service.j2"
    broken.write_text(
        "[Unit]\nRequires={{ gunicorn_unit }}@%i.socket\n[Service]\nExecStart=/nonexistent/gunicorn\n"
    )
    installed = [node.check_output(f"sha256sum {UNITS}") for node in nodes]
    served_before = {name: fetch(name, "/version").json() for name in PORTS}

    for attempt in (1, 2):
        run = deploy("--extra-vars", json.dumps({"gunicorn_service_template": str(broken)}))
        output = run.stdout + run.stderr
        assert run.returncode != 0, f"attempt {attempt}: {output}"
        assert "do not pass systemd-analyze verify" in output, output
        assert "/nonexistent/gunicorn" in output, output
        assert [node.check_output(f"sha256sum {UNITS}") for node in nodes] == installed
        assert {name: fetch(name, "/version").json() for name in PORTS} == served_before

    # The usual template again: staged and checked anew, the same units as before.
    run = deploy()
    assert run.returncode == 0, run.stdout + run.stderr
    assert [node.check_output(f"sha256sum {UNITS}") for node in nodes] == installed
