"""Secure by default, as a user or an attacker would find it: a sandboxed app unit, an Nginx
that says little and refuses dotfiles, secrets nowhere they can be read, slow clients that
cannot starve the app, and HTTPS (with a redirect, HSTS and a rate limit) when it is on."""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import socket
import ssl
import threading
import time

import pytest
import testinfra
from conftest import APP, PORTS, ROOT, SUPERVISOR, TLS_PORTS, deploy, fetch, live_unit, master_pid
from gunship_testkit import readable_by_others, self_signed

SECRET = "molecule-secret-value"  # molecule.yml's app_env


systemd_only = pytest.mark.skipif(SUPERVISOR, reason="supervisor has no sandbox: systemd's own settings")


@systemd_only
def test_the_app_unit_is_sandboxed_to_an_exposure_of_at_most_2(node: testinfra.host.Host) -> None:
    verdict = node.check_output(f"systemd-analyze security --no-pager {live_unit(node)} | tail -n 1")
    level = float(re.search(r"exposure level for \S+: ([0-9.]+)", verdict).group(1))
    assert level <= 2.0, verdict


def test_the_app_runs_without_privileges(node: testinfra.host.Host) -> None:
    pid = master_pid(node)
    lines = node.file(f"/proc/{pid}/status").content_string.splitlines()
    status = dict(line.split(":\t", 1) for line in lines if ":\t" in line)
    assert int(status["CapEff"], 16) == 0  # no capability in effect, whatever runs it
    assert node.user(APP).uid == int(status["Uid"].split()[1]) != 0
    if not SUPERVISOR:  # systemd's sandbox also takes away what could be gained back
        assert status["NoNewPrivs"].strip() == "1"
        assert status["Seccomp"].strip() == "2"  # a system call filter
        assert int(status["CapBnd"], 16) == 0


def test_nginx_hides_its_version_and_sends_the_security_headers(container: str) -> None:
    answer = fetch(container, "/")
    assert answer.status == 200
    assert answer.headers["server"] == "nginx"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert answer.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert "strict-transport-security" not in answer.headers  # HSTS is opt-in, and HTTPS only


@pytest.mark.parametrize("path", ["/.env", "/.git/config", "/static/style.css.bak", "/settings.py~"])
def test_dotfiles_and_backups_are_refused(container: str, path: str) -> None:
    assert fetch(container, path).status == 403


def test_no_world_readable_file_holds_the_secret(node: testinfra.host.Host) -> None:
    assert readable_by_others(node, SECRET) == []
    env = node.file(f"{ROOT}/shared/env")
    assert (env.mode, env.user, env.group) == (0o640, "root", APP)
    assert SECRET not in node.file(f"{ROOT}/current/release.json").content_string


def test_request_logs_are_not_world_readable(node: testinfra.host.Host) -> None:
    readable = node.run("find /var/log/nginx /var/log/journal -type f -perm -o=r 2>/dev/null")
    assert readable.stdout.strip() == ""
    # The slots' logs under supervisor: any user but root and adm is stopped at the directory.
    logs = node.run(f"find /var/log/gunship/{APP} -type f").stdout.split()
    assert bool(logs) == SUPERVISOR
    for log in logs:
        assert not node.run(f"runuser -u nobody -- cat {log}").succeeded, log


class SlowClients:
    """Connections that trickle a request's header or body, a byte now and then."""

    def __init__(self, port: int, headers: int, bodies: int) -> None:
        self.sockets: list[socket.socket] = []
        for _ in range(headers):
            self.sockets.append(self.open(port, b"GET / HTTP/1.1\r\nHost: localhost\r\n"))
        post = b"POST /version HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\nx"
        for _ in range(bodies):
            self.sockets.append(self.open(port, post))
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.trickle, daemon=True)

    @staticmethod
    def open(port: int, start: bytes) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(start)
        return sock

    def trickle(self) -> None:
        while not self.stopped.wait(1):
            for sock in self.sockets:
                # Nginx may have given up on one: what it should do with a client this slow.
                with contextlib.suppress(OSError):
                    sock.send(b"x")

    def __enter__(self) -> SlowClients:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join()
        for sock in self.sockets:
            sock.close()


def test_fast_requests_succeed_while_slow_clients_hold_connections(container: str) -> None:
    # More slow clients than the app has workers, many times over: through Nginx, not one of
    # them reaches Gunicorn until its request is whole.
    with SlowClients(PORTS[container], headers=150, bodies=50):
        time.sleep(1)
        statuses = []
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            statuses.append(fetch(container, "/version").status)
    assert len(statuses) >= 20 and set(statuses) == {200}, statuses[:20]


# --- HTTPS --------------------------------------------------------------------------------

TLS_SECRET = "tls-run-secret-5c2e9a"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory):
    """Deploy with HTTPS, HSTS and a rate limit (and a new secret); afterwards, back to HTTP."""
    cert, key = self_signed("localhost")
    ca = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.write_text(cert)
    settings = {
        "app_tls": True,
        "app_tls_certificate": cert,
        "app_tls_certificate_key": key,
        "nginx_hsts": True,
        # Low enough that a quick run of new connections from one address goes beyond it.
        "nginx_limit_req_rate": "5r/s",
        "nginx_limit_req_burst": 5,
        "app_env": {"GUNSHIP_SECRET_TOKEN": TLS_SECRET},
    }
    run = deploy("--extra-vars", json.dumps(settings))
    try:
        assert run.returncode == 0, run.stdout + run.stderr
        yield {"ca": str(ca), "output": run.stdout + run.stderr, "key": key}
    finally:
        back = deploy()
        assert back.returncode == 0, back.stdout + back.stderr


def https(container: str, path: str, ca: str, server_name: str = "localhost") -> http.client.HTTPResponse:
    context = ssl.create_default_context(cafile=ca)
    sock = socket.create_connection(("127.0.0.1", TLS_PORTS[container]), timeout=10)
    tls_sock = context.wrap_socket(sock, server_hostname=server_name)
    connection = http.client.HTTPSConnection(server_name, TLS_PORTS[container], context=context)
    connection.sock = tls_sock
    connection.request("GET", path, headers={"Host": server_name})
    response = connection.getresponse()
    response.read()
    response.tls_version = tls_sock.version()  # type: ignore[attr-defined]  (a note on the response)
    connection.close()
    return response


def test_https_serves_the_app_with_a_modern_protocol_and_hsts(tls, container: str) -> None:
    response = https(container, "/version", tls["ca"])
    assert response.status == 200
    assert response.tls_version in ("TLSv1.2", "TLSv1.3")  # type: ignore[attr-defined]  (set above)
    assert response.getheader("strict-transport-security") == "max-age=31536000; includeSubDomains"
    assert response.getheader("x-content-type-options") == "nosniff"


def test_plain_http_redirects_to_https(tls, container: str) -> None:
    answer = fetch(container, "/version?x=1")
    assert answer.status == 301
    assert answer.headers["location"] == "https://localhost/version?x=1"


def test_a_name_the_site_does_not_serve_gets_no_certificate(tls, container: str) -> None:
    with pytest.raises(ssl.SSLError):
        https(container, "/", tls["ca"], server_name="other.example")


def test_the_rate_limit_answers_429_beyond_the_burst(tls, container: str) -> None:
    statuses = [https(container, "/version", tls["ca"]).status for _ in range(40)]
    assert 200 in statuses and 429 in statuses, statuses


def test_the_deploy_output_shows_neither_the_secret_nor_the_key(tls) -> None:
    assert TLS_SECRET not in tls["output"]
    key_body = tls["key"].splitlines()[1]
    assert key_body not in tls["output"]


def test_the_tls_key_is_readable_by_root_only(tls, node: testinfra.host.Host) -> None:
    key = node.file(f"/etc/nginx/gunship/tls/{APP}.key")
    assert (key.mode, key.user) == (0o600, "root")
    assert node.file("/etc/nginx/gunship/tls").mode == 0o700
