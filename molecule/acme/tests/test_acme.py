"""Automatic HTTPS as a site's users and its operators see it: a certificate from the ACME server
(Pebble, on the host) that a browser trusting that server's root accepts for the site's name,
plain HTTP that redirects but answers ACME challenges, renewals by certbot's timer that Nginx
loads without a failed request (and never through a configuration `nginx -t` refuses), a name
the ACME server cannot validate leaving the site as it was, and bad ACME settings refused
before any host changes.

Run in order (pytest keeps a module's order): each test starts from what the one before left."""

from __future__ import annotations

import json
import os
import socket
import ssl
import sys
import threading
import time
from pathlib import Path

import pytest
import testinfra
from cryptography import x509

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
from gunship_testkit import (
    Answer,
    eventually,
    fetch_https,
    fetch_port,
    fingerprint,
    journal,
    live_record,
    pebble_root,
    playbook,
)

APP = "gunship-acme"
NAME = "gunship-acme.test"
CONTAINER = "gunship-acme-trixie"
HTTP_PORT = 18094
HTTPS_PORT = 18448
CERTIFICATE = f"/etc/letsencrypt/live/{APP}/fullchain.pem"


@pytest.fixture(scope="module")
def node() -> testinfra.host.Host:
    return testinfra.get_host(f"podman://{CONTAINER}")


@pytest.fixture(scope="module")
def root(node: testinfra.host.Host) -> str:
    return pebble_root(node)


def https(root: str, path: str, server_name: str = NAME) -> Answer:
    return fetch_https(HTTPS_PORT, path, server_name, root)


def served_serial(root: str) -> int:
    """The serial number of the certificate the site presents now."""
    context = ssl.create_default_context(cadata=root)
    with (
        socket.create_connection(("127.0.0.1", HTTPS_PORT), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=NAME) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    return x509.load_der_x509_certificate(der).serial_number


def renew(node: testinfra.host.Host) -> testinfra.backend.base.CommandResult:
    """What certbot's timer runs, now."""
    return node.run("systemctl start certbot.service")


def deploy(*args: str) -> tuple[int, str]:
    run = playbook("deploy.yml", os.environ["MOLECULE_INVENTORY_FILE"], *args)
    return run.returncode, run.stdout + run.stderr


def test_the_site_serves_https_with_the_certificate_the_acme_server_issued(root: str, node) -> None:
    certificate = node.check_output(f"openssl x509 -in {CERTIFICATE} -noout -issuer -ext subjectAltName")
    assert "Pebble Intermediate CA" in certificate and f"DNS:{NAME}" in certificate
    response = https(root, "/version")
    assert response.status == 200
    assert response.json()["release"] == live_record(node, APP)["id"]
    # Pebble's own HTTPS is trusted through app_tls_acme_ca_certificate, added to the host's
    # trusted CAs, which keep the public ones.
    bundle = node.file("/etc/ssl/certs/ca-certificates.crt").content_string
    pebble_tls = node.file("/etc/pebble/tls.crt").content_string.strip()
    assert pebble_tls in bundle and bundle.count("BEGIN CERTIFICATE") > 100


def test_a_name_the_certificate_does_not_hold_is_refused_by_the_browser(root: str) -> None:
    with pytest.raises(ssl.SSLError):
        https(root, "/", server_name="other.gunship-acme.test")


def test_plain_http_redirects_to_https_but_answers_acme_challenges(node) -> None:
    answer = fetch_port(HTTP_PORT, "/version?x=1", host_header=NAME)
    assert answer.status == 301
    assert answer.headers["location"] == f"https://{NAME}/version?x=1"
    token = "gunship-test-token"
    challenges = "/var/lib/gunship/acme/.well-known/acme-challenge"
    node.run_expect([0], f"mkdir -p {challenges} && echo answer > {challenges}/{token}")
    try:
        challenge = fetch_port(HTTP_PORT, f"/.well-known/acme-challenge/{token}", host_header=NAME)
        assert (challenge.status, challenge.body.strip()) == (200, "answer")
        assert challenge.headers["content-type"].startswith("text/plain")
    finally:
        node.run(f"rm -f {challenges}/{token}")
    # A challenge with no answer is a 404 over HTTP, not a redirect the ACME server would follow.
    assert fetch_port(HTTP_PORT, "/.well-known/acme-challenge/none", host_header=NAME).status == 404


def test_certbots_timer_renews_and_nginx_serves_the_new_certificate_without_a_failed_request(
    root: str, node
) -> None:
    timer = node.service("certbot.timer")
    assert timer.is_enabled and timer.is_running
    before = served_serial(root)
    failures: list[str] = []
    served = [0]
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                status = https(root, "/version").status
                if status == 200:
                    served[0] += 1
                else:
                    failures.append(f"HTTP {status}")
            except OSError as error:
                failures.append(str(error))
            stop.wait(0.02)

    threads = [threading.Thread(target=load, daemon=True) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1)
        result = renew(node)
        time.sleep(1)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert result.rc == 0, journal(node, "certbot.service")
    # `systemctl reload` returns once the signal is sent: Nginx's new workers follow.
    assert eventually(lambda: served_serial(root) != before, 10), "the renewed certificate is not served"
    assert failures == [] and served[0] > 20, (failures[:5], served[0])


def test_a_renewal_that_nginx_would_refuse_leaves_the_served_certificate(root: str, node) -> None:
    before = served_serial(root)
    on_disk = node.check_output(f"openssl x509 -in {CERTIFICATE} -noout -serial")
    node.run_expect([0], "echo 'this is not nginx' > /etc/nginx/conf.d/broken.conf")
    try:
        renew(node)
        renewed = node.check_output(f"openssl x509 -in {CERTIFICATE} -noout -serial")
        assert renewed != on_disk, "certbot did not renew: the test proves nothing"
        assert served_serial(root) == before
        assert https(root, "/version").status == 200
        said = node.check_output("journalctl -q --no-pager -t gunship-nginx -n 5")
        assert "nginx -t failed; Nginx keeps serving the certificate it has" in said
    finally:
        node.run("rm -f /etc/nginx/conf.d/broken.conf")
    # The next renewal, with Nginx's configuration mended, loads the certificate.
    assert renew(node).rc == 0
    assert eventually(lambda: served_serial(root) != before, 10)


def test_bad_acme_settings_are_refused_before_any_change(node) -> None:
    before = fingerprint(node, APP)
    cases = [
        (
            {
                "app_server_names": ["*.gunship-acme.test", "127.0.0.1", "localhost", NAME],
                "app_tls_acme_directory": "http://localhost:14000/dir",
                "app_tls_acme_email": "ops-at-example",
                "app_tls_acme_ca_certificate": "not a certificate",
            },
            [
                "app_server_names (nginx_server_names) has *.gunship-acme.test, 127.0.0.1, localhost "
                "but app_tls_acme is on",
                'app_tls_acme_directory (nginx_tls_acme_directory) is "http://localhost:14000/dir"',
                'app_tls_acme_email (nginx_tls_acme_email) is "ops-at-example"',
                "app_tls_acme_ca_certificate (nginx_tls_acme_ca_certificate) is not a PEM certificate",
            ],
        ),
        (
            {"app_tls_certificate": "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----"},
            ["app_tls_acme is on and app_tls_certificate or app_tls_certificate_key is set too"],
        ),
        ({"app_tls_acme": "sometimes"}, ['app_tls_acme (nginx_tls_acme) is "sometimes": set true or false.']),
    ]
    for overrides, messages in cases:
        status, output = deploy("-e", json.dumps(overrides))
        assert status != 0, output[-2000:]
        assert "no host was changed" in output
        for message in messages:
            assert message in " ".join(output.split()), (message, output[-3000:])
    assert fingerprint(node, APP) == before


def test_a_name_the_acme_server_cannot_validate_leaves_the_site_as_it_was(root: str, node) -> None:
    serial = served_serial(root)
    # new.gunship-acme.test resolves nowhere: Pebble cannot ask this host for its challenge.
    status, output = deploy("-e", json.dumps({"app_server_names": [NAME, f"new.{NAME}"]}))
    assert status != 0
    said = " ".join(output.split())
    assert f"issued no certificate for {NAME}, new.{NAME}" in said, output[-3000:]
    assert "the site serves on with the certificate it had" in said
    assert served_serial(root) == serial
    assert https(root, "/version").status == 200
    # The names the inventory gives back: the next deploy serves them without a new certificate.
    status, output = deploy()
    assert status == 0, output[-3000:]
    assert served_serial(root) == serial
