"""What every Molecule scenario's tests share: HTTP from the host on loopback, the real
playbooks run as a user runs them, versioned copies of the example app, a bounded load loop,
and the host's audit log."""

from __future__ import annotations

import http.client
import json
import os
import re
import secrets as secrets_module
import shlex
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import testinfra

APP = "gunship-example"
ROOT = f"/srv/{APP}"
# What serves and what runs the slots in the scenario under test (molecule.yml's verifier
# env): the same checks hold for Gunicorn and uWSGI, under systemd and supervisor; these
# helpers ask whichever it is.
APP_SERVER = os.environ.get("GUNSHIP_APP_SERVER", "gunicorn")
UWSGI = APP_SERVER == "uwsgi"
SUPERVISOR = os.environ.get("GUNSHIP_PROCESS_MANAGER", "systemd") == "supervisor"
UNIT = f"{APP_SERVER}-{APP}"  # a template: <server>-<app>@blue / @green
SLOTS = ("blue", "green")
PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).parents[2]))
# The tools next to the interpreter running the tests: the project's venv.
BIN = Path(sys.executable).parent


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: str

    def json(self) -> dict:
        return json.loads(self.body)


def request_port(
    port: int, method: str, path: str, headers: dict[str, str], body: bytes | None = None
) -> Answer:
    """One HTTP request to 127.0.0.1:port, on a connection of its own."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        text = response.read().decode()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, text)
    finally:
        connection.close()


def fetch_port(port: int, path: str, host_header: str = "localhost") -> Answer:
    return request_port(port, "GET", path, {"Host": host_header})


def fetch_https(port: int, path: str, server_name: str, root: str) -> Answer:
    """GET over HTTPS from 127.0.0.1:port as a browser makes it: the site's name sent (SNI and
    Host) and checked against the certificate, the chain checked against `root` (PEM)."""
    context = ssl.create_default_context(cadata=root)
    connection = http.client.HTTPSConnection(server_name, port, timeout=15, context=context)
    connection.sock = context.wrap_socket(
        socket.create_connection(("127.0.0.1", port), timeout=15), server_hostname=server_name
    )
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        text = response.read().decode()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, text)
    finally:
        connection.close()


def pebble_root(node: testinfra.host.Host) -> str:
    """The root the ACME test server Pebble on `node` signs with (a new one each time it
    starts), from its management API: what a browser that trusts its certificates would have."""
    return node.check_output(
        "python3 -c 'import ssl, urllib.request;"
        ' print(urllib.request.urlopen("https://localhost:15000/roots/0",'
        ' context=ssl.create_default_context(cafile="/etc/pebble/tls.crt")).read().decode())\''
    )


def post_form(
    port: int, path: str, host_header: str, fields: dict[str, str], files: dict[str, tuple[str, bytes]]
) -> Answer:
    """POST a multipart form (fields, and files as name -> (filename, content)) on loopback."""
    boundary = secrets_module.token_hex(16)
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts += [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\n".encode()
        + content
        + b"\r\n"
        for name, (filename, content) in files.items()
    ]
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    headers = {"Host": host_header, "Content-Type": f"multipart/form-data; boundary={boundary}"}
    return request_port(port, "POST", path, headers, body)


def playbook(
    name: str, inventory: str, *args: str, timeout: int = 900, users_config: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run playbooks/<name> against `inventory`, as a user would. users_config: with the
    project's ansible.cfg, as a user's run reads it, instead of Molecule's (the output then
    looks as a user sees it: results printed as YAML)."""
    command = [str(BIN / "ansible-playbook"), f"playbooks/{name}", "-i", inventory, *args]
    env = {
        **os.environ,
        "ANSIBLE_ROLES_PATH": str(PROJECT / "roles"),
        "ANSIBLE_CONNECTION_PLUGINS": str(PROJECT / "plugins" / "connection"),
        "ANSIBLE_LIBRARY": str(PROJECT / "plugins" / "modules"),
        "ANSIBLE_NOCOLOR": "1",
    }
    if users_config:
        env["ANSIBLE_CONFIG"] = str(PROJECT / "ansible.cfg")
    return subprocess.run(
        command, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def fab(inventory: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`fab TASK ARGS --inventory INV` from the project directory, as a user types it."""
    return subprocess.run(
        [str(BIN / "fab"), *args, "--inventory", inventory],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def versioned_source(
    tmp: Path, version: str, patch: Callable[[Path], None] | None = None, example: str = "flaskapp"
) -> Path:
    """A copy of examples/<example> (the Flask app unless named) with `version` in its
    pyproject.toml, and `patch` applied to its package directory."""
    source = tmp / f"{example}-{version}"
    shutil.copytree(
        PROJECT / "examples" / example,
        source,
        ignore=shutil.ignore_patterns("*.egg-info", "__pycache__", "build"),
    )
    pyproject = source / "pyproject.toml"
    pyproject.write_text(
        re.sub(
            r'^version = ".*"$', f'version = "{version}"', pyproject.read_text(), count=1, flags=re.MULTILINE
        )
    )
    if patch:
        (package,) = (path for path in (source / "src").iterdir() if path.is_dir())
        patch(package)
    return source


def fail_health(package: Path) -> None:
    """A `versioned_source` patch: the app imports, but its health check answers 503."""
    init = package / "__init__.py"
    text = init.read_text()
    healthy = 'return jsonify(status="ok")'
    assert healthy in text
    init.write_text(text.replace(healthy, 'return jsonify(status="database unreachable"), 503'))


class LoadLoop:
    """Bounded GET /version traffic from the host on loopback, counting what comes back.

    Each thread pauses `pause` seconds between requests: about 40 requests a second per thread,
    hundreds across every switch, without taking the cores a scenario beside it needs."""

    def __init__(
        self, ports: list[int], threads_per_port: int = 2, seconds_max: float = 900, pause: float = 0.02
    ) -> None:
        self.pause = pause
        self.deadline = time.monotonic() + seconds_max
        self.stopped = threading.Event()
        self.versions: Counter[str] = Counter()
        self.failures: list[str] = []
        self.threads = [
            threading.Thread(target=self.run, args=(port,), daemon=True)
            for port in ports
            for _ in range(threads_per_port)
        ]

    def run(self, port: int) -> None:
        while not self.stopped.is_set() and time.monotonic() < self.deadline:
            try:
                answer = fetch_port(port, "/version")
                if answer.status == 200:
                    self.versions[answer.json()["version"]] += 1
                else:
                    self.failures.append(f"{port}: HTTP {answer.status} at {time.strftime('%T')}")
            except OSError as error:
                self.failures.append(f"{port}: {error} at {time.strftime('%T')}")
            self.stopped.wait(self.pause)

    @property
    def requests(self) -> int:
        return sum(self.versions.values()) + len(self.failures)

    def start(self) -> LoadLoop:
        for thread in self.threads:
            thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        for thread in self.threads:
            thread.join()

    def __enter__(self) -> LoadLoop:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def audit(node: testinfra.host.Host, app: str = APP) -> list[dict]:
    text = node.file(f"/srv/{app}/audit.log").content_string
    return [json.loads(line) for line in text.splitlines()]


def live_record(node: testinfra.host.Host, app: str = APP) -> dict:
    return json.loads(node.file(f"/srv/{app}/current/release.json").content_string)


def live_slot(node: testinfra.host.Host, app: str = APP) -> str:
    # readlink, not File.linked_to: that resolves the slot's link on to the release.
    return node.check_output(f"readlink /srv/{app}/slots/live")


def release_versions(node: testinfra.host.Host, app: str = APP) -> dict[str, str]:
    """Release id -> version, for every release directory on the host."""
    ids = node.check_output(f"ls -1 /srv/{app}/releases").split()
    return {
        rid: json.loads(node.file(f"/srv/{app}/releases/{rid}/release.json").content_string)["version"]
        for rid in ids
    }


def fingerprint(host: testinfra.host.Host, app: str = APP) -> str:
    """A digest of everything a deploy of `app` manages, by content and metadata (not mtimes),
    and its slots' states as the process manager under test tells them: equal before and after
    means nothing changed. The audit log is left out: recording a refused deploy is its job."""
    unit = f"{APP_SERVER}-{app}"
    slot_state = (
        f"supervisorctl pid {unit}-$slot || true"
        if SUPERVISOR
        else f"systemctl is-active {unit}@$slot.socket {unit}@$slot.service || true\n"
        f"  systemctl show -p MainPID --value {unit}@$slot.service"
    )
    return host.check_output(rf"""
set -e
for path in /srv/{app} /etc/gunship /etc/nginx /etc/systemd/system /etc/supervisor; do
  [ -d "$path" ] || continue
  find "$path" -xdev \( -type f -o -type l -o -type d \) ! -name audit.log -printf '%p %y %l %m %u %g\n'
  find "$path" -xdev -type f ! -name audit.log -exec sha256sum {{}} +
done | sort
for slot in blue green; do
  {slot_state}
done
systemctl is-active nginx || true
""")


def slot_name(slot: str, app: str = APP) -> str:
    """A slot's systemd unit (without .service), or its supervisor program."""
    return f"{APP_SERVER}-{app}-{slot}" if SUPERVISOR else f"{APP_SERVER}-{app}@{slot}"


def live_unit(host: testinfra.host.Host, app: str = APP) -> str:
    return slot_name(live_slot(host, app), app)


def master_pid(host: testinfra.host.Host, app: str = APP) -> int:
    """The live slot's master, as its process manager knows it (0 while it is down)."""
    if SUPERVISOR:
        pid = host.run(f"supervisorctl pid {live_unit(host, app)}").stdout.strip()
        return int(pid) if pid.isdigit() else 0
    return int(host.check_output(f"systemctl show -p MainPID --value {live_unit(host, app)}.service"))


def slot_running(host: testinfra.host.Host, name: str) -> bool:
    if SUPERVISOR:
        return host.run(f"supervisorctl status {name}").stdout.split()[1:2] == ["RUNNING"]
    return host.service(f"{name}.service").is_running


def restart_slot(host: testinfra.host.Host, name: str) -> bool:
    verb = f"supervisorctl restart {name}" if SUPERVISOR else f"systemctl restart {name}.service"
    return host.run(verb).succeeded


def slot_log_file(name: str) -> str:
    """A supervisor program's log: /var/log/gunship/<app>/<slot>.log."""
    app, slot = name.removeprefix(f"{APP_SERVER}-").rsplit("-", 1)
    return f"/var/log/gunship/{app}/{slot}.log"


def journal(host: testinfra.host.Host, unit: str, lines: int = 40) -> str:
    """The last lines a unit (or, under supervisor, a slot's program) wrote."""
    if SUPERVISOR and unit.startswith(f"{APP_SERVER}-"):
        return host.run(f"tail -n {lines} {slot_log_file(unit)}").stdout
    return host.run(f"journalctl -u {unit} -n {lines} --no-pager").stdout


def app_log_mark(host: testinfra.host.Host, app: str = APP) -> str:
    """Where the app's slots' logs end now, for app_log_since."""
    if SUPERVISOR:  # each slot's log size
        return " ".join(
            host.run(f"stat -c %s {slot_log_file(slot_name(s, app))} || echo 0").stdout.strip() for s in SLOTS
        )
    return host.check_output("date '+%Y-%m-%d %H:%M:%S'")


def app_log_since(host: testinfra.host.Host, mark: str, app: str = APP) -> str:
    """What both of the app's slots logged after the mark."""
    if SUPERVISOR:
        return "".join(
            host.run(f"tail -c +{int(size) + 1} {slot_log_file(slot_name(slot, app))}").stdout
            for slot, size in zip(SLOTS, mark.split(), strict=True)
        )
    return host.check_output(f"journalctl -u '{APP_SERVER}-{app}@*' --no-pager -o cat --since '{mark}'")


def worker_pids(host: testinfra.host.Host, master: int) -> list[int]:
    return [int(pid) for pid in host.run(f"ps --no-headers -o pid --ppid {master}").stdout.split()]


def eventually(check: Callable[[], bool], seconds: float = 30) -> bool:
    """Whether `check` comes true within `seconds`, asked twice a second."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.5)
    return check()


def readable_by_others(node: testinfra.host.Host, value: str) -> list[str]:
    """Files on the host that any user can read and that hold `value`."""
    found = node.run(
        "find / -xdev -type f -perm -o=r -size -20M -print0 2>/dev/null"
        f" | xargs -0 grep -lsF -- {shlex.quote(value)}"
    )
    return found.stdout.split()


def ssh_host(root: Path, ssh_port: int, key: Path) -> dict[str, object]:
    """Connection variables for a container whose SSH is published on 127.0.0.1:ssh_port,
    logged in to as the deploy user with `key`."""
    return {
        "ansible_host": "127.0.0.1",
        "ansible_port": ssh_port,
        "ansible_user": "deploy",
        "ansible_ssh_private_key_file": str(key),
        # A new container has a new host key: keep it out of ~/.ssh/known_hosts.
        "ansible_ssh_common_args": (
            f"-o UserKnownHostsFile={root / 'known_hosts'} -o StrictHostKeyChecking=accept-new"
        ),
    }


def example_settings(root: Path, **overrides: object) -> dict[str, object]:
    """The example app's settings, with the build directory in `root`."""
    return {
        "app_name": APP,
        "app_source": str(PROJECT / "examples" / "flaskapp"),
        "app_wsgi": "gunship_example:create_app()",
        "app_static_dir": "gunship_example/static",
        "app_health_path": "/healthz",
        "app_server_names": ["localhost", "127.0.0.1"],
        "release_build_dir": str(root / "build"),
        **overrides,
    }


def write_inventory(root: Path, hosts: dict, group: str, settings: dict) -> Path:
    """root/inventory: hosts.yml and group_vars/<group>.yml. The build directory and
    known_hosts go beside it, in root: Ansible reads every file of an inventory directory."""
    inventory = root / "inventory"
    # Ansible reads whatever is there: an earlier write's files must not linger.
    shutil.rmtree(inventory, ignore_errors=True)
    (inventory / "group_vars").mkdir(parents=True)
    (inventory / "hosts.yml").write_text(json.dumps(hosts, indent=2))  # JSON is YAML
    (inventory / "group_vars" / f"{group}.yml").write_text(json.dumps(settings, indent=2))
    return inventory


def ssh_inventory(
    root: Path,
    host: str,
    ssh_port: int,
    key: Path,
    secrets: dict[str, str] | None = None,
    **group_vars: object,
) -> Path:
    """Write an ordinary inventory directory, root/inventory, for one host on 127.0.0.1:ssh_port
    with the example app's settings as its group_vars.

    `secrets` go into app_env the way the README tells a user to put them there: each value
    encrypted with ansible-vault into `vault_file(inventory)` as `vault_<name>`, app_env in
    group_vars/app.yml naming `{{ vault_<name> }}`, and the vault password, readable by its
    owner only, in `vault_password_file(inventory)`."""
    settings = example_settings(root, **group_vars)
    inventory = root / "inventory"
    vaulted = []
    if secrets:
        password = vault_password_file(inventory)
        password.unlink(missing_ok=True)
        password.touch(mode=0o600)
        password.write_text(secrets_module.token_urlsafe(24) + "\n")
        vaulted = [vault_encrypt(password, f"vault_{name.lower()}", value) for name, value in secrets.items()]
        env = dict(settings.get("app_env") or {})
        env.update({name: f"{{{{ vault_{name.lower()} }}}}" for name in secrets})
        settings["app_env"] = env
    hosts = {"app": {"hosts": {host: ssh_host(root, ssh_port, key)}}}
    write_inventory(root, hosts, "app", settings)
    if vaulted:
        vault_file(inventory).parent.mkdir()
        vault_file(inventory).write_text("---\n" + "".join(vaulted))
    return inventory


def cluster_inventory(
    root: Path,
    app_hosts: dict[str, int],
    lb_hosts: dict[str, int],
    key: Path,
    backend_addresses: dict[str, str] | None = None,
    **group_vars: object,
) -> Path:
    """An inventory directory for a cluster of containers reached over SSH (name -> port on
    127.0.0.1): `app` and `loadbalancers` groups, the example app's settings in
    group_vars/all.yml (the load balancers need them too), and where the load balancers reach
    each app host (`app_backend_address`)."""
    apps = {name: ssh_host(root, port, key) for name, port in app_hosts.items()}
    for name, address in (backend_addresses or {}).items():
        apps[name]["app_backend_address"] = address
    hosts = {
        "app": {"hosts": apps},
        "loadbalancers": {"hosts": {name: ssh_host(root, port, key) for name, port in lb_hosts.items()}},
    }
    return write_inventory(root, hosts, "all", example_settings(root, **group_vars))


def vault_password_file(inventory: Path) -> Path:
    """Where ssh_inventory keeps the vault password: beside the inventory, never inside it."""
    return inventory.parent / f"{inventory.name}.vault-password"


def vault_file(inventory: Path) -> Path:
    """Where ssh_inventory keeps the vaulted values, as the README's Secrets section does:
    under group_vars/all/ (a group_vars/app/ directory would hide group_vars/app.yml)."""
    return inventory / "group_vars" / "all" / "vault.yml"


def vault_encrypt(password: Path, name: str, value: str) -> str:
    """`name: !vault |...` as `ansible-vault encrypt_string` writes it (value read from stdin)."""
    run = subprocess.run(
        [
            str(BIN / "ansible-vault"),
            "encrypt_string",
            "--vault-password-file",
            str(password),
            "--stdin-name",
            name,
        ],
        input=value,
        capture_output=True,
        text=True,
        check=True,
    )
    return run.stdout if run.stdout.endswith("\n") else run.stdout + "\n"


def self_signed(name: str = "localhost") -> tuple[str, str]:
    """A fresh self-signed certificate for `name` (and 127.0.0.1) and its key, as PEM text."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    loopback = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name), loopback]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode()
