"""The canonical templates render to configs that the real tools accept, with Gunship's
defaults and with the settings a user changes."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from render import PROJECT, render, role_defaults

GUNICORN_CONF = "etc/gunship/app/gunicorn.conf.py.j2"
SERVICE = "etc/systemd/system/app-slot@.service.j2"
SOCKET = "etc/systemd/system/app-slot@.socket.j2"
SITE = "etc/nginx/sites-available/app.conf.j2"
DEFAULT_SITE = "etc/nginx/sites-available/default-drop.conf.j2"
VENV_BIN = Path(sys.executable).parent


def gunicorn_vars(**overrides: object) -> dict:
    return role_defaults(
        "gunicorn",
        **{
            "gunicorn_app_name": "shop",
            "gunicorn_wsgi_app": "gunship_example:create_app()",
            **overrides,
        },
    )


def systemd_vars(**overrides: object) -> dict:
    return role_defaults("systemd", **{"systemd_app_name": "shop", **overrides})


def check_config(tmp_path: Path, variables: dict) -> subprocess.CompletedProcess[str]:
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text(render(GUNICORN_CONF, variables))
    return subprocess.run(
        [VENV_BIN / "gunicorn", "--check-config", "--print-config", "--config", conf],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )


def printed_setting(output: str, name: str) -> str:
    for line in output.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == name:
            return value.strip()
    raise AssertionError(f"{name} not in gunicorn --print-config output")


def test_default_gunicorn_config_passes_check_config(tmp_path: Path) -> None:
    result = check_config(tmp_path, gunicorn_vars())
    assert result.returncode == 0, result.stderr
    # (2 x 2 cores) + 1
    assert printed_setting(result.stdout, "workers") == "5"
    assert printed_setting(result.stdout, "worker_class") == "sync"
    assert printed_setting(result.stdout, "worker_tmp_dir") == "/dev/shm"
    assert printed_setting(result.stdout, "bind") == "['unix:/run/shop/blue.sock']"
    assert (
        printed_setting(result.stdout, "raw_env")
        == f"['GUNSHIP_RELEASE_ID={tmp_path.name}', 'GUNSHIP_SLOT=blue']"
    )


def test_each_slot_gets_its_own_socket_and_control_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GUNSHIP_SLOT", "green")
    result = check_config(tmp_path, gunicorn_vars())
    assert result.returncode == 0, result.stderr
    assert printed_setting(result.stdout, "bind") == "['unix:/run/shop/green.sock']"
    assert printed_setting(result.stdout, "control_socket") == "/run/shop/green/gunicorn.ctl"


@pytest.mark.parametrize(
    "overrides, setting, expected",
    [
        ({"gunicorn_workers": 9}, "workers", "9"),
        ({"gunicorn_worker_class": "gthread", "gunicorn_threads": 8}, "threads", "8"),
        # gthread: each worker takes no more connections than it has threads.
        ({"gunicorn_worker_class": "gthread", "gunicorn_threads": 8}, "worker_connections", "8"),
        ({"gunicorn_worker_class": "gthread", "gunicorn_threads": 8}, "keepalive", "0"),
        ({"gunicorn_worker_class": "sync"}, "keepalive", "2"),
        (
            {"gunicorn_worker_class": "gevent", "gunicorn_worker_connections": 500},
            "worker_connections",
            "500",
        ),
        ({"gunicorn_accesslog": False}, "accesslog", "None"),
        ({"gunicorn_preload_app": "yes"}, "preload_app", "True"),
        (
            {"gunicorn_settings": {"limit_request_line": 8190, "proxy_protocol": False}},
            "limit_request_line",
            "8190",
        ),
        ({"gunicorn_max_requests": 0}, "max_requests", "0"),
    ],
)
def test_user_settings_reach_gunicorn(tmp_path: Path, overrides: dict, setting: str, expected: str) -> None:
    result = check_config(tmp_path, gunicorn_vars(**overrides))
    assert result.returncode == 0, result.stderr
    assert printed_setting(result.stdout, setting) == expected


def test_check_config_refuses_a_callable_that_does_not_import(tmp_path: Path) -> None:
    result = check_config(tmp_path, gunicorn_vars(gunicorn_wsgi_app="gunship_example:nope"))
    assert result.returncode != 0


@pytest.fixture
def app_root(tmp_path: Path) -> Path:
    """A slot whose gunicorn exists, so that systemd-analyze can check ExecStart."""
    bin_dir = tmp_path / "srv" / "slots" / "blue" / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "gunicorn").symlink_to(VENV_BIN / "gunicorn")
    return tmp_path / "srv"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_units_pass_systemd_analyze_verify(tmp_path: Path, app_root: Path) -> None:
    variables = systemd_vars(
        systemd_app_root=str(app_root),
        systemd_app_user="daemon",
        systemd_app_group="daemon",
        systemd_socket_group="daemon",
    )
    units = tmp_path / "units"
    units.mkdir()
    (units / "gunicorn-shop@.service").write_text(render(SERVICE, variables))
    (units / "gunicorn-shop@.socket").write_text(render(SOCKET, variables))
    result = subprocess.run(
        [
            "systemd-analyze",
            "verify",
            units / "gunicorn-shop@blue.socket",
            units / "gunicorn-shop@blue.service",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    service = (units / "gunicorn-shop@.service").read_text()
    for line in (
        "Type=notify",
        "KillMode=mixed",
        "Restart=on-failure",
        "User=daemon",
        "RuntimeDirectory=shop/%i",
        "WorkingDirectory=" + str(app_root) + "/slots/%i",
        "ExecReload=/bin/kill -s HUP $MAINPID",
        "TimeoutStopSec=40",
    ):
        assert line in service.splitlines()
    socket = (units / "gunicorn-shop@.socket").read_text()
    assert "SocketMode=0660" in socket.splitlines()
    assert "ListenStream=/run/shop/%i.sock" in socket.splitlines()


def exposure(unit_dir: Path, unit: str) -> tuple[int, str]:
    """`systemd-analyze security --offline` of a unit file: (exit status at 2.0, last line)."""
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--threshold=20", unit],
        cwd=unit_dir,
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode, (result.stdout.strip().splitlines() or [result.stderr])[-1]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_the_slot_service_is_sandboxed_to_an_exposure_of_at_most_2(tmp_path: Path) -> None:
    variables = systemd_vars(systemd_app_user="daemon", systemd_app_group="daemon")
    (tmp_path / "gunicorn-shop@.service").write_text(render(SERVICE, variables))
    status, verdict = exposure(tmp_path, "gunicorn-shop@blue.service")
    assert status == 0, verdict
    # The same unit without its sandbox is what the directives are worth.
    bare = systemd_vars(systemd_app_user="daemon", systemd_app_group="daemon", systemd_sandbox={})
    (tmp_path / "gunicorn-shop@.service").write_text(render(SERVICE, bare))
    status, verdict = exposure(tmp_path, "gunicorn-shop@blue.service")
    assert status != 0, verdict


def test_an_app_relaxes_one_sandbox_directive_and_keeps_the_rest() -> None:
    overrides = {"MemoryDenyWriteExecute": "no", "ReadWritePaths": "/srv/shop/uploads", "ProtectProc": None}
    lines = render(SERVICE, systemd_vars(systemd_sandbox_overrides=overrides)).splitlines()
    assert "MemoryDenyWriteExecute=no" in lines and "MemoryDenyWriteExecute=yes" not in lines
    assert "ReadWritePaths=/srv/shop/uploads" in lines
    assert not any(line.startswith("ProtectProc=") for line in lines)
    assert {"ProtectSystem=strict", "NoNewPrivileges=yes", "CapabilityBoundingSet="} <= set(lines)


def nginx_vars(**overrides: object) -> dict:
    return role_defaults(
        "nginx",
        **{
            "nginx_app_name": "shop",
            "nginx_server_names": ["shop.example.com"],
            "nginx_static_root": "/srv/shop/current/static/",
            **overrides,
        },
    )


def nginx_test(tmp_path: Path, *sites: str) -> subprocess.CompletedProcess[str]:
    for index, site in enumerate(sites):
        (tmp_path / f"site{index}.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n  access_log off;\n  include {tmp_path}/site*.conf;\n}}\n"
    )
    return subprocess.run(
        ["nginx", "-t", "-q", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
        check=False,
    )


needs_nginx = pytest.mark.skipif(shutil.which("nginx") is None, reason="needs nginx")


@needs_nginx
@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"nginx_static_root": ""},
        {"nginx_listen_ipv6": False, "nginx_http_port": 8080},
        {"nginx_app_name": "my-shop", "nginx_proxy_buffering": False},
        {"nginx_media_root": "/srv/shop/shared/media/", "nginx_media_url": "/uploads/"},
    ],
)
def test_site_and_default_server_pass_nginx_t(tmp_path: Path, overrides: dict) -> None:
    upstream = tmp_path / "shop.upstream.conf"  # what gunship-release writes on a switch
    upstream.write_text("server unix:/run/shop/green.sock fail_timeout=0;\n")
    variables = nginx_vars(nginx_upstream_file=str(upstream), **overrides)
    result = nginx_test(tmp_path, render(SITE, variables), render(DEFAULT_SITE, variables))
    assert result.returncode == 0, result.stderr


@needs_nginx
def test_a_tls_site_with_redirect_hsts_and_rate_limit_passes_nginx_t(tmp_path: Path) -> None:
    sys.path.insert(0, str(PROJECT / "molecule" / "shared"))
    from gunship_testkit import self_signed

    cert, key = self_signed("shop.example.com")
    (tmp_path / "tls").mkdir()
    (tmp_path / "tls" / "shop.crt").write_text(cert)
    (tmp_path / "tls" / "shop.key").write_text(key)
    upstream = tmp_path / "shop.upstream.conf"
    upstream.write_text("server unix:/run/shop/green.sock fail_timeout=0;\n")
    variables = nginx_vars(
        nginx_upstream_file=str(upstream),
        nginx_tls=True,
        nginx_tls_dir=str(tmp_path / "tls"),
        nginx_https_port=8443,
        nginx_http_port=8080,
        nginx_hsts=True,
        nginx_limit_req_rate="10r/s",
    )
    site = render(SITE, variables)
    result = nginx_test(tmp_path, site, render(DEFAULT_SITE, variables))
    assert result.returncode == 0, result.stderr
    for directive in (
        "return 301 https://$host:8443$request_uri;",
        "listen 8443 ssl;",
        "ssl_protocols TLSv1.2 TLSv1.3;",
        'add_header Strict-Transport-Security "max-age=31536000; includeSubDomains" always;',
        "limit_req zone=shop_app_req burst=20 nodelay;",
    ):
        assert directive in site


def test_site_carries_the_proxy_essentials() -> None:
    site = render(SITE, nginx_vars())
    for directive in (
        "include /etc/nginx/gunship/shop.upstream.conf;",
        "proxy_set_header Host $http_host;",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
        "proxy_buffering on;",
        "client_max_body_size 10m;",
        "alias /srv/shop/current/static/;",
        "expires 30d;",
        "server_name shop.example.com;",
        "server_tokens off;",
        'add_header X-Content-Type-Options "nosniff" always;',
        "client_header_timeout 10s;",
    ):
        assert directive in site
    assert "Strict-Transport-Security" not in site  # opt-in, and only with TLS
    assert "return 444;" in render(DEFAULT_SITE, nginx_vars())


def test_uploads_are_served_with_the_security_headers_and_a_sandbox() -> None:
    site = render(SITE, nginx_vars(nginx_media_root="/srv/shop/shared/media/"))
    location = site[site.index("location /media/ {") :].split("}", 1)[0]
    assert "alias /srv/shop/shared/media/;" in location
    assert "expires 1h;" in location
    assert "add_header Content-Security-Policy \"frame-ancestors 'none'; sandbox\" always;" in location
    assert 'add_header X-Content-Type-Options "nosniff" always;' in location
    assert "location /media/" not in render(SITE, nginx_vars())


def test_templates_say_they_are_managed() -> None:
    for template, variables in (
        (GUNICORN_CONF, gunicorn_vars()),
        (SERVICE, systemd_vars()),
        (SITE, nginx_vars()),
    ):
        assert render(template, variables).startswith("#\n# Managed by Gunship")


def balancer_vars(**overrides: object) -> dict:
    servers = [{"address": "10.0.0.11", "port": 80}, {"address": "app2.internal", "port": 8080}]
    return nginx_vars(**{"nginx_upstream_servers": servers, "nginx_static_root": "", **overrides})


@needs_nginx
def test_a_load_balancer_site_passes_nginx_t(tmp_path: Path) -> None:
    # Nginx resolves upstream names when it loads: a name only the cluster's DNS knows would
    # fail here, so the test's second app host is an address.
    variables = balancer_vars(
        nginx_upstream_servers=[{"address": "10.0.0.11", "port": 80}, {"address": "fd00::12", "port": 80}]
    )
    result = nginx_test(tmp_path, render(SITE, variables), render(DEFAULT_SITE, variables))
    assert result.returncode == 0, result.stderr


def test_a_load_balancer_balances_with_passive_checks_keepalive_and_retries() -> None:
    site = render(SITE, balancer_vars())
    for directive in (
        "server 10.0.0.11:80 max_fails=3 fail_timeout=10s;",
        "server app2.internal:8080 max_fails=3 fail_timeout=10s;",
        "keepalive 16;",
        "proxy_http_version 1.1;",
        'proxy_set_header Connection "";',
        "proxy_next_upstream error timeout http_502 http_503 http_504;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
        "proxy_hide_header X-Frame-Options;",
        'add_header X-Frame-Options "DENY" always;',
    ):
        assert directive in site
    assert "include /etc/nginx/gunship/" not in site  # no local slot behind a load balancer
    assert "alias " not in site  # static files come from the app hosts
    ipv6 = render(SITE, balancer_vars(nginx_upstream_servers=[{"address": "fd00::12", "port": 80}]))
    assert "server [fd00::12]:80 max_fails=3" in ipv6


def echo_backend() -> tuple[ThreadingHTTPServer, int]:
    """A backend on loopback that answers each request with the headers it got, as JSON."""

    class Echo(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def get_from(source: str, port: int, headers: dict[str, str]) -> tuple[int, dict]:
    """GET / on 127.0.0.1:port from the loopback address `source`."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5, source_address=(source, 0))
    try:
        connection.request("GET", "/", headers={"Host": "shop.example.com", **headers})
        response = connection.getresponse()
        body = response.read()
        return response.status, json.loads(body) if response.status == 200 else {}
    finally:
        connection.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def local_site(tmp_path: Path, upstream: str, **overrides: object) -> tuple[dict, int]:
    """The site's variables for a real Nginx run from tmp_path (`serving`), on a free loopback
    port, in front of `upstream` (the address of the upstream's one server), its logs in tmp_path,
    and the port."""
    upstream_file = tmp_path / "shop.upstream.conf"  # what gunship-release writes on a switch
    upstream_file.write_text(f"server {upstream};\n")
    port = free_port()
    variables = nginx_vars(
        **{
            "nginx_upstream_file": str(upstream_file),
            "nginx_http_port": port,
            "nginx_listen_ipv6": False,
            "nginx_static_root": "",
            "nginx_access_log": str(tmp_path / "access.log"),
            "nginx_error_log": str(tmp_path / "site-error.log"),
            **overrides,
        }
    )
    return variables, port


@contextlib.contextmanager
def serving(tmp_path: Path, site: str, port: int) -> Iterator[None]:
    """A real Nginx in tmp_path serving `site` on 127.0.0.1:port, stopped afterwards. Its workers
    run as the user running the tests (tmp_path is theirs alone)."""
    (tmp_path / "site.conf").write_text(site)
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
    (tmp_path / "nginx.conf").write_text(
        f"{user}pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\ndaemon on;\nevents {{}}\n"
        f"http {{\n  include /etc/nginx/mime.types;\n  include {tmp_path}/site.conf;\n}}\n"
    )
    nginx = ["nginx", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")]
    started = subprocess.run(nginx, capture_output=True, text=True, check=False)
    assert started.returncode == 0, started.stderr
    try:
        for _ in range(50):  # the master forks its worker
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield
    finally:
        subprocess.run([*nginx, "-s", "stop"], capture_output=True, check=False)


@needs_nginx
def test_an_app_host_believes_its_load_balancer_and_answers_only_it(tmp_path: Path) -> None:
    """A real Nginx with the app-host site: 127.0.0.2 plays the load balancer, 127.0.0.3 a
    stranger; the backend echoes what Nginx forwarded."""
    backend, backend_port = echo_backend()
    variables, port = local_site(
        tmp_path,
        f"127.0.0.1:{backend_port}",
        nginx_trusted_proxies=["127.0.0.2"],
        nginx_only_trusted_proxies=True,
    )
    try:
        with serving(tmp_path, render(SITE, variables), port):
            spoof = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}

            status, seen = get_from("127.0.0.2", port, spoof)  # the load balancer
            assert status == 200
            assert seen["x-forwarded-proto"] == "https"
            assert seen["x-forwarded-for"] == "203.0.113.7, 127.0.0.2"

            status, seen = get_from("127.0.0.1", port, spoof)  # the host itself: not believed
            assert status == 200
            assert seen["x-forwarded-proto"] == "http"
            assert seen["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"

            assert get_from("127.0.0.3", port, spoof)[0] == 403  # anyone else
            # The log names the client the load balancer spoke for, not the load balancer.
            clients = [line.split()[0] for line in (tmp_path / "access.log").read_text().splitlines()]
            assert "203.0.113.7" in clients and "127.0.0.2" not in clients
    finally:
        backend.shutdown()


@needs_nginx
def test_maintenance_answers_503_with_the_page_but_not_health_checks_or_static(tmp_path: Path) -> None:
    """While the page file exists, the app's requests get it (503, Retry-After, the security
    headers); the health path and static files are answered as usual; removed, the app again."""
    backend, backend_port = echo_backend()
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "site.css").write_text("body { color: red }\n")
    page = tmp_path / "maintenance" / "maintenance.html"
    page.parent.mkdir()
    variables, port = local_site(
        tmp_path,
        f"127.0.0.1:{backend_port}",
        nginx_static_root=f"{tmp_path}/static/",
        nginx_maintenance_page=str(page),
        nginx_maintenance_retry_after=120,
        nginx_maintenance_exempt=["/healthz"],
    )

    def get(path: str) -> tuple[int, dict[str, str], str]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request("GET", path, headers={"Host": "shop.example.com"})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read().decode()
        finally:
            connection.close()

    try:
        with serving(tmp_path, render(SITE, variables), port):
            assert get("/orders")[0] == 200  # no page: the app
            page.write_text("<p>Back at noon.</p>\n")
            status, headers, body = get("/orders")
            assert (status, headers.get("Retry-After"), body) == (503, "120", "<p>Back at noon.</p>\n")
            assert headers.get("X-Content-Type-Options") == "nosniff"
            assert headers.get("Cache-Control") == "no-store"
            assert get("/")[0] == 503
            assert get("/healthz")[0] == 200  # the health checks reach the app
            status, _, body = get("/static/site.css")
            assert (status, body) == (200, "body { color: red }\n")
            page.unlink()
            assert get("/orders")[0] == 200
    finally:
        backend.shutdown()


def test_check_front_passes_a_2xx_and_names_anything_else() -> None:
    backend, port = echo_backend()
    check_front = PROJECT / "roles" / "nginx" / "files" / "check-front"
    check = [str(check_front), "http", str(port), "shop.example.com", "/", "2"]
    try:
        assert subprocess.run(check, capture_output=True, check=False).returncode == 0
    finally:
        backend.shutdown()
        backend.server_close()
    refused = subprocess.run(check, capture_output=True, text=True, check=False)  # nobody listens now
    assert refused.returncode == 1
    assert f"GET http://shop.example.com:{port}/ (through 127.0.0.1) did not answer" in refused.stdout


def acme_vars(tmp_path: Path, issued: bool, **overrides: object) -> dict:
    """An ACME site's variables: before its certificate is issued, or after (a certificate in
    tmp_path's live directory, as certbot keeps it)."""
    live = tmp_path / "live"
    if issued:
        sys.path.insert(0, str(PROJECT / "molecule" / "shared"))
        from gunship_testkit import self_signed

        cert, key = self_signed("shop.example.com")
        (live / "shop").mkdir(parents=True)
        (live / "shop" / "fullchain.pem").write_text(cert)
        (live / "shop" / "privkey.pem").write_text(key)
    return nginx_vars(
        nginx_tls=True,
        nginx_tls_acme=True,
        nginx_acme_live_dir=str(live),
        nginx_acme_webroot=str(tmp_path / "acme"),
        _nginx_acme_names=["shop.example.com"] if issued else [],
        **overrides,
    )


@needs_nginx
def test_an_acme_site_serves_http_and_the_challenges_until_its_certificate_is_issued(tmp_path: Path) -> None:
    upstream = tmp_path / "shop.upstream.conf"
    upstream.write_text("server unix:/run/shop/green.sock fail_timeout=0;\n")
    before = render(SITE, acme_vars(tmp_path, issued=False, nginx_upstream_file=str(upstream)))
    assert nginx_test(tmp_path, before).returncode == 0
    assert " ssl" not in before and "return 301" not in before
    assert "location ^~ /.well-known/acme-challenge/ {" in before
    assert f"root {tmp_path}/acme;" in before

    after = render(SITE, acme_vars(tmp_path, issued=True, nginx_upstream_file=str(upstream)))
    result = nginx_test(tmp_path, after)
    assert result.returncode == 0, result.stderr
    assert f"ssl_certificate {tmp_path}/live/shop/fullchain.pem;" in after
    assert f"ssl_certificate_key {tmp_path}/live/shop/privkey.pem;" in after
    # Plain HTTP redirects everything but the challenges, which renewals still need.
    plain = after.split("listen 443 ssl;")[0]
    assert "location ^~ /.well-known/acme-challenge/ {" in plain
    assert "location / {\n        return 301 https://$host$request_uri;" in plain


@needs_nginx
def test_a_challenge_is_answered_from_the_webroot_and_never_relayed_twice(tmp_path: Path) -> None:
    """A real Nginx as one of two load balancers. Its peer is itself on another loopback address:
    a challenge it has no file for is asked of the peer once (marked as a peer's request) and
    the peer, having none either, answers 404 instead of asking again."""
    backend, backend_port = echo_backend()
    variables, port = local_site(
        tmp_path,
        f"127.0.0.1:{backend_port}",
        nginx_tls=True,
        nginx_tls_acme=True,
        nginx_acme_webroot=str(tmp_path / "acme"),
        nginx_acme_peers=["127.0.0.2"],
        _nginx_acme_names=[],
    )
    challenges = tmp_path / "acme" / ".well-known" / "acme-challenge"
    challenges.mkdir(parents=True)
    (challenges / "token-1").write_text("token-1.thumbprint")

    def get(path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request("GET", path, headers={"Host": "shop.example.com", **(headers or {})})
            response = connection.getresponse()
            return response.status, response.read().decode()
        finally:
            connection.close()

    try:
        with serving(tmp_path, render(SITE, variables), port):
            assert get("/.well-known/acme-challenge/token-1") == (200, "token-1.thumbprint")
            assert get("/.well-known/acme-challenge/token-2")[0] == 404
            assert get("/.well-known/acme-challenge/token-2", {"X-Gunship-Acme-Peer": "1"})[0] == 404
            assert get("/")[0] == 200  # everything else: the app
            # Two requests for token-2 from the client, one relayed to the peer (from
            # 127.0.0.1): three in the log, not a loop.
            asked = [line for line in (tmp_path / "access.log").read_text().splitlines() if "token-2" in line]
            assert len(asked) == 3, asked
    finally:
        backend.shutdown()


@needs_nginx
def test_an_apps_path_under_a_dot_reaches_it_while_dotfiles_stay_refused(tmp_path: Path) -> None:
    """Radicale's web interface lives at /.web/: named in app_dot_paths, it reaches the app; any
    other dotfile path is still refused, below /.web/ too, and so are editors' backups."""
    backend, backend_port = echo_backend()
    variables, port = local_site(tmp_path, f"127.0.0.1:{backend_port}", nginx_app_dot_paths=["/.web/"])

    def status(path: str) -> int:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request("GET", path, headers={"Host": "shop.example.com"})
            return connection.getresponse().status
        finally:
            connection.close()

    try:
        with serving(tmp_path, render(SITE, variables), port):
            assert [status(path) for path in ("/.web/", "/.web/css/main.css", "/")] == [200, 200, 200]
            refused = ("/.git/config", "/.webby", "/alice/.env", "/.web/.git/config", "/.web/a.css.bak")
            assert [status(path) for path in refused] == [403] * len(refused)
    finally:
        backend.shutdown()
