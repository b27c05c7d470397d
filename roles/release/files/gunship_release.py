#!/usr/bin/python3
"""gunship-release: the host side of Gunship's release cycle, for one app.

Ansible (deploy.yml, rollback.yml) and Fabric (fab rollback, releases, status, scale, unlock)
both call it, so a switch is the same switch whoever asks for it. Standard library only: it
runs on the host's own python3.

    gunship-release APP status [--json]
    gunship-release APP releases [--json]
    gunship-release APP activate RELEASE [--action A] [--by WHO] [--force] [--dry-run]
                                         [--prune KEEP [--keep-release RELEASE ...]]
                                         [--unlock [--settle F]]
    gunship-release APP rollback [--to RELEASE] [--by WHO] [--force] [--dry-run]
    gunship-release APP lock --holder WHO [--python PATH] [--settings JSON] [--dry-run]
    gunship-release APP unlock [--settle F] [--dry-run]
    gunship-release APP settled --fingerprint F   (whether the last deploy left the host so)
    gunship-release APP scale (+N|-N) [--dry-run]
    gunship-release APP stop-gracefully SLOT   (for app servers whose graceful stop is not a signal)
    gunship-release APP prune --keep N [--keep-release RELEASE ...] [--dry-run]
    gunship-release APP install RELEASE --archive TAR --lock FILE --record JSON [--static-dir DIR]
    gunship-release APP audit --action A --outcome O [--to RELEASE] [--by WHO] [--reason TEXT]
    gunship-release APP boot              (supervisor: start the live slot when supervisord starts)
    gunship-release APP cooldown SLOT     (supervisor: stop SLOT after warm_seconds)
    gunship-release APP check-import SPEC [--interface wsgi|asgi]
                                          (the import gate: run by a release's Python, as the app)
    gunship-release APP exec [--by WHO] -- COMMAND [ARG ...]   (in the live release, as the app)
    gunship-release APP logs [--lines N] [--follow]
    gunship-release APP slot-logs [--lines N]   (both slots' last lines, for a failed deploy's report)
    gunship-release APP maintenance (on [--message TEXT] | off | status) [--by WHO] [--dry-run]
    gunship-release APP schema RELEASE    (record the schema state in the release's release.json)

Settings come from /etc/gunship/APP/cycle.json, written by the release role. The slots run
under systemd (template units) or supervisor (one program per slot): the `ProcessManager`
classes below are the only code that knows which. Each slot runs Gunicorn or uWSGI: the
`AppServer` classes are the only code that knows which (how a slot's socket answers a health
check, how its workers scale, how it stops gracefully); APP_SERVERS registers them.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import datetime as dt
import hashlib
import html
import http.client
import importlib
import inspect
import itertools
import json
import os
import shlex
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFIG_DIR = Path("/etc/gunship")
STATE_DIR = Path("/var/lib/gunship")  # per app: what deploys leave for the next one to compare
SCHEMA_LINES = 2000  # lines of app_schema_command's output kept in release.json


class CycleError(Exception):
    """A refusal or a failed step: the message is for the person who ran the command."""


@dataclass
class Cycle:
    app: str
    root: Path
    slots: list[str]
    service: str
    socket_unit: str
    socket: str
    upstream_file: Path
    health_path: str
    health_host: str
    health_timeout: float
    front_port: int
    warm_seconds: int
    journal_lines: int
    release_marker: str
    front_scheme: str = "http"
    # "2xx": the health path must answer 2xx. "below-500": no health path was set, so "/"
    # answering anything but a server error (a login redirect, a 404) counts as up.
    health_accept: str = "2xx"
    process_manager: str = "systemd"
    app_server: str = "gunicorn"
    # supervisor only: who runs the slots, the group that may reach their sockets, and each
    # slot's log file ({slot}). systemd's units name the user and group themselves.
    user: str = ""
    group: str = ""
    socket_group: str = "www-data"
    log_file: str = ""
    # Day-two commands: how a command runs as the app does (gunship-exec, with the app's
    # environment file), the app's own Nginx logs by name, the maintenance page (the user's
    # template, rendered at deploy, and the page Nginx serves while it exists), and the command
    # that reports the database schema's state (app_schema_command; empty: not recorded).
    exec_tool: str = "/usr/local/libexec/gunship/gunship-exec"
    env_file: str = ""
    nginx_logs: dict[str, str] = field(default_factory=dict)
    maintenance_template: str = ""
    maintenance_page: str = ""
    maintenance_mark: str = ""  # where the template takes the message
    schema_command: str = ""
    schema_timeout: float = 120
    # How long a stopping slot's workers may finish their requests (the app server's graceful
    # timeout).
    graceful_seconds: float = 30

    @classmethod
    def load(cls, app: str) -> Cycle:
        path = CONFIG_DIR / app / "cycle.json"
        try:
            return cls.from_text(path.read_text())
        except FileNotFoundError:
            raise CycleError(f"{app}: no {path}; has the app been deployed to this host?") from None

    @classmethod
    def from_text(cls, text: str) -> Cycle:
        raw = json.loads(text)
        raw["root"] = Path(raw["root"])
        raw["upstream_file"] = Path(raw["upstream_file"])
        return cls(**raw)

    @property
    def manager(self) -> ProcessManager:
        return SupervisorSlots(self) if self.process_manager == "supervisor" else SystemdSlots(self)

    @property
    def server(self) -> AppServer:
        return APP_SERVERS[self.app_server](self)

    # --- paths and names -------------------------------------------------------------------
    def unit(self, slot: str) -> str:
        return self.service.format(slot=slot)

    def socket_of(self, slot: str) -> str:
        return self.socket.format(slot=slot)

    def slot_link(self, slot: str) -> Path:
        return self.root / "slots" / slot

    @property
    def live_link(self) -> Path:
        return self.root / "slots" / "live"

    @property
    def releases_dir(self) -> Path:
        return self.root / "releases"

    @property
    def lock_file(self) -> Path:
        return self.root / "deploy.lock"

    @property
    def audit_log(self) -> Path:
        return self.root / "audit.log"

    @property
    def manifest(self) -> Path:
        """The files Gunship's roles ensure for the app (gunship_files' manifest)."""
        return STATE_DIR / self.app / "managed.json"

    @property
    def settled_file(self) -> Path:
        return STATE_DIR / self.app / "settled.json"

    # --- state -----------------------------------------------------------------------------
    def live_slot(self) -> str | None:
        try:
            slot = os.readlink(self.live_link)
        except FileNotFoundError:
            return None
        return slot if slot in self.slots else None

    def idle_slot(self) -> str:
        live = self.live_slot()
        return next(s for s in self.slots if s != live)

    def slot_release(self, slot: str) -> str | None:
        """The release the slot's link points at (what it runs after its next start)."""
        try:
            return Path(os.readlink(self.slot_link(slot))).name
        except FileNotFoundError:
            return None

    def running_release(self, slot: str) -> str | None:
        """The release the slot's running master serves: its working directory."""
        pid = self.manager.main_pid(slot)
        if not pid:
            return None
        try:
            return Path(os.readlink(f"/proc/{pid}/cwd")).name
        except OSError:
            pass
        try:  # written at start (systemd: ExecStartPost; supervisor: gunship-exec --marker)
            return Path(self.release_marker.format(slot=slot)).read_text().strip() or None
        except OSError:
            return None

    def records(self) -> dict[str, dict[str, Any]]:
        found = {}
        for path in self.releases_dir.glob("*/release.json"):
            with contextlib.suppress(ValueError, OSError):
                found[path.parent.name] = json.loads(path.read_text())
        return dict(sorted(found.items(), key=lambda kv: kv[1].get("deployed_at", "")))


# --- small tools ---------------------------------------------------------------------------
def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def systemctl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["systemctl", *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise CycleError(f"systemctl {' '.join(args)} failed: {result.stderr.strip()}")
    return result


def unit_property(unit: str, name: str) -> str:
    return systemctl("show", "-p", name, "--value", unit, check=False).stdout.strip()


def is_active(unit: str) -> bool:
    return systemctl("is-active", "--quiet", unit, check=False).returncode == 0


def enablement(*units: str) -> str:
    """Whether each unit starts at boot: enabled, disabled, static..."""
    return " ".join(systemctl("is-enabled", *units, check=False).stdout.split())


def atomic_symlink(target: str | Path, link: Path) -> None:
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, link)


def atomic_write(path: Path, text: str, mode: int = 0o644) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.chmod(mode)
    os.replace(tmp, path)


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def http_status(connection: http.client.HTTPConnection, path: str, host: str) -> int:
    try:
        connection.request("GET", path, headers={"Host": host, "User-Agent": "gunship-release"})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def is_healthy(cycle: Cycle, status: int) -> bool:
    return status < 500 if cycle.health_accept == "below-500" else 200 <= status < 300


def health_rule(cycle: Cycle) -> str:
    """What passes, and how to change it: printed with every failed health check."""
    if cycle.health_accept == "below-500":
        return (
            f"app_health_path is not set, so any answer below 500 from {cycle.health_path} passes; "
            "set app_health_path to a path that answers 2xx when the app is up (e.g. /healthz)"
        )
    return f"app_health_path {cycle.health_path} must answer 2xx"


def poll_health(
    cycle: Cycle,
    probe: Callable[[], int],
    *,
    tries: int,
    pause: float,
    seconds: float | None = None,
) -> str | None:
    """Ask the health path through `probe` (its status code) until it passes (is_healthy): None,
    or what it last answered once `tries` are used up (or `seconds` have passed)."""
    deadline = time.monotonic() + seconds if seconds is not None else None
    last = "no answer"
    for attempt in itertools.count(1):
        try:
            status = probe()
            if is_healthy(cycle, status):
                return None
            last = f"HTTP {status}"
        except OSError as error:
            last = str(error)
        if attempt >= tries or (deadline is not None and time.monotonic() + pause >= deadline):
            return last
        time.sleep(pause)
    return last  # not reached


def wait_healthy(cycle: Cycle, slot: str) -> None:
    """The health path passes (is_healthy) over the slot's own socket within health_timeout."""
    last = poll_health(
        cycle,
        lambda: cycle.server.health_status(slot),
        tries=sys.maxsize,
        pause=0.5,
        seconds=cycle.health_timeout,
    )
    if last is None:
        return
    raise CycleError(
        f"slot {slot} did not pass the health check: GET {cycle.health_path} (Host: {cycle.health_host}) "
        f"over {cycle.socket_of(slot)} gave {last} within {cycle.health_timeout:g} s "
        f"({health_rule(cycle)})\n"
        f"{cycle.manager.log_tail(slot, cycle.journal_lines)}"
    )


class LoopbackHTTPS(http.client.HTTPSConnection):
    """HTTPS to this host's own Nginx on 127.0.0.1, naming the site in the TLS handshake (SNI).

    The certificate is not verified: the check is about what Nginx routes to, on loopback,
    and a site's certificate names the site, not 127.0.0.1."""

    def __init__(self, port: int, server_name: str, timeout: float) -> None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        super().__init__("127.0.0.1", port, timeout=timeout, context=context)
        self.server_name = server_name

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.server_name)


def front_connection(cycle: Cycle) -> http.client.HTTPConnection:
    if cycle.front_scheme == "https":
        return LoopbackHTTPS(cycle.front_port, cycle.health_host, timeout=5)
    return http.client.HTTPConnection("127.0.0.1", cycle.front_port, timeout=5)


def front_healthy(cycle: Cycle, tries: int = 10) -> str | None:
    """None when the health path passes (is_healthy) through Nginx; else what it answered."""
    return poll_health(
        cycle,
        lambda: http_status(front_connection(cycle), cycle.health_path, cycle.health_host),
        tries=tries,
        pause=0.3,
    )


def upstream_text(cycle: Cycle, slot: str) -> str:
    return (
        f"# Managed by gunship-release: the live slot of {cycle.app} is {slot}.\n"
        f"server unix:{cycle.socket_of(slot)} fail_timeout=0;\n"
    )


def point_nginx_at(cycle: Cycle, slot: str) -> None:
    previous = cycle.upstream_file.read_text() if cycle.upstream_file.exists() else None
    atomic_write(cycle.upstream_file, upstream_text(cycle, slot))
    test = subprocess.run(["nginx", "-t", "-q"], capture_output=True, text=True, check=False)
    if test.returncode != 0:
        if previous is not None:
            atomic_write(cycle.upstream_file, previous)
        raise CycleError(f"nginx -t refused the switch to slot {slot}: {test.stderr.strip()}")
    systemctl("reload", "nginx.service")


# --- process managers ----------------------------------------------------------------------
class ProcessManager:
    """What the release cycle asks of whatever runs the slots."""

    def __init__(self, cycle: Cycle) -> None:
        self.cycle = cycle

    def main_pid(self, slot: str) -> int:
        """The running master's pid; 0 when the slot is not running."""
        raise NotImplementedError

    def start(self, slot: str) -> bool:
        """(Re)start the idle slot afresh, with the settings installed now. False if it failed."""
        raise NotImplementedError

    def stop(self, slot: str) -> None:
        raise NotImplementedError

    def at_boot(self, live: str, retired: str | None) -> None:
        """Make the live slot, and only it, start when the host boots."""

    def cooldown(self, slot: str) -> str:
        """The name of what stops a retired slot after warm_seconds (a timer, or a program)."""
        return f"gunship-{self.cycle.app}-cooldown-{slot}"

    def stop_later(self, slot: str) -> None:
        """Stop the slot once it has stayed warm for warm_seconds."""
        raise NotImplementedError

    def cancel_stop_later(self, slot: str) -> None:
        raise NotImplementedError

    def log_tail(self, slot: str, lines: int) -> str:
        return self.log_tail_of([slot], lines)

    def log_tail_of(self, slots: list[str], lines: int) -> str:
        """The last `lines` the slots logged, together (by time, where the log keeps it)."""
        command = self.log_command(slots, lines, follow=False)
        return subprocess.run(command, capture_output=True, text=True, check=False).stdout.strip()

    def log_command(self, slots: list[str], lines: int, follow: bool) -> list[str]:
        """A command that prints the last `lines` of the slots' log, and follows it if asked."""
        raise NotImplementedError

    def started_at(self, slot: str) -> str:
        raise NotImplementedError

    def boot_state(self, slot: str) -> str:
        """Whether the slot starts at boot, where that is not in a file Gunship manages."""
        return ""


class SystemdSlots(ProcessManager):
    """Template units SERVER-APP@SLOT.service, each started by its own listening socket unit:
    systemd holds the socket, so connections wait in its backlog while a master restarts."""

    def main_pid(self, slot: str) -> int:
        unit = self.cycle.unit(slot)
        return int(unit_property(unit, "MainPID") or 0) if is_active(unit) else 0

    def start(self, slot: str) -> bool:
        unit = self.cycle.unit(slot)
        systemctl("stop", unit, check=False)
        # Restarted too, so that changed socket settings apply.
        systemctl("restart", self.cycle.socket_unit.format(slot=slot))
        return systemctl("start", unit, check=False).returncode == 0

    def stop(self, slot: str) -> None:
        systemctl("stop", self.cycle.unit(slot), check=False)

    def at_boot(self, live: str, retired: str | None) -> None:
        for slot, verb in ((live, "enable"), (retired, "disable")):
            if slot:
                units = (self.cycle.unit(slot), self.cycle.socket_unit.format(slot=slot))
                systemctl(verb, "--quiet", *units, check=False)

    def stop_later(self, slot: str) -> None:
        subprocess.run(
            [
                "systemd-run",
                "--quiet",
                f"--unit={self.cooldown(slot)}",
                f"--on-active={self.cycle.warm_seconds}s",
                "--timer-property=AccuracySec=1s",
                "systemctl",
                "stop",
                self.cycle.unit(slot),
            ],
            capture_output=True,
            text=True,
            check=False,
        )

    def cancel_stop_later(self, slot: str) -> None:
        for suffix in (".timer", ".service"):
            systemctl("stop", self.cooldown(slot) + suffix, check=False)

    def log_command(self, slots: list[str], lines: int, follow: bool) -> list[str]:
        units = [arg for slot in slots for arg in ("-u", self.cycle.unit(slot))]
        return ["journalctl", "--no-pager", "-o", "short-iso", "-n", str(lines), *units] + (
            ["-f"] if follow else []
        )

    def started_at(self, slot: str) -> str:
        return unit_property(self.cycle.unit(slot), "ActiveEnterTimestamp")

    def boot_state(self, slot: str) -> str:
        return enablement(self.cycle.unit(slot), self.cycle.socket_unit.format(slot=slot))


def supervisorctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["supervisorctl", *args], capture_output=True, text=True, check=False)


class SupervisorSlots(ProcessManager):
    """One supervisord program per slot (autostart=false; the app server binds its own socket), a boot
    program that starts the live slot, and a cooldown program per slot for the warm time."""

    def main_pid(self, slot: str) -> int:
        pid = supervisorctl("pid", self.cycle.unit(slot)).stdout.strip()
        return int(pid) if pid.isdigit() else 0

    def prepare(self, slot: str) -> None:
        """The sockets' directory (the app writes, the web server's group may enter, no one
        else: the app server makes its socket 0666 inside it) and the slot's runtime directory. /run is
        empty after a boot, and supervisord creates nothing."""
        cycle = self.cycle
        for path, group in (
            (Path(cycle.socket_of(slot)).parent, cycle.socket_group),
            (Path(cycle.release_marker.format(slot=slot)).parent, cycle.group),
        ):
            path.mkdir(parents=True, exist_ok=True)
            shutil.chown(path, cycle.user, group)
            path.chmod(0o750)

    def start(self, slot: str) -> bool:
        program = self.cycle.unit(slot)
        self.prepare(slot)
        # The idle slot's program as installed now: a changed one is reloaded (and stopped),
        # a new one added. Never the live slot's: reloading a program stops it.
        supervisorctl("reread")
        supervisorctl("update", program)
        supervisorctl("stop", program)
        result = supervisorctl("start", program)
        return result.returncode == 0 and "ERROR" not in result.stdout

    def stop(self, slot: str) -> None:
        # supervisord stops with a signal; an app server whose graceful stop is not one is
        # asked for it first (systemd's units do the same in ExecStop).
        pid = self.main_pid(slot)
        if pid:
            self.cycle.server.stop_gracefully(slot, pid)
        supervisorctl("stop", self.cycle.unit(slot))

    def stop_later(self, slot: str) -> None:
        supervisorctl("start", self.cooldown(slot))  # `gunship-release APP cooldown SLOT`

    def cancel_stop_later(self, slot: str) -> None:
        supervisorctl("stop", self.cooldown(slot))

    def log_tail(self, slot: str, lines: int) -> str:
        try:
            text = Path(self.cycle.log_file.format(slot=slot)).read_text(errors="replace")
        except OSError as error:
            return f"(no log: {error})"
        return "\n".join(text.splitlines()[-lines:])

    def log_command(self, slots: list[str], lines: int, follow: bool) -> list[str]:
        files = [self.cycle.log_file.format(slot=slot) for slot in slots]
        return ["tail", "-q", "-n", str(lines), *(["-F"] if follow else []), *files]

    def started_at(self, slot: str) -> str:
        pid = self.main_pid(slot)
        if not pid:
            return ""
        return subprocess.run(
            ["ps", "-o", "lstart=", "-p", str(pid)], capture_output=True, text=True, check=False
        ).stdout.strip()


# --- app servers ---------------------------------------------------------------------------
def wait_exit(pid: int, seconds: float) -> bool:
    """Whether the process `pid` is gone within `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        time.sleep(0.2)
    return False


def uwsgi_status(path: str, request_path: str, host: str, timeout: float) -> int:
    """GET request_path over a uwsgi-protocol socket: the status code of the answer.

    A uwsgi packet is a 4-byte header (modifier 0, the size of what follows as 16-bit little
    endian, modifier 0) and the request's CGI variables, each name and value preceded by its
    16-bit little-endian length; the answer is the HTTP response as the app wrote it."""
    uri = request_path
    path_info, _, query = request_path.partition("?")
    variables = {
        "REQUEST_METHOD": "GET",
        "REQUEST_URI": uri,
        "PATH_INFO": path_info,
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_NAME": host,
        "SERVER_PORT": "80",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": host,
        "HTTP_USER_AGENT": "gunship-release",
    }
    body = b"".join(
        len(part).to_bytes(2, "little") + part
        for name, value in variables.items()
        for part in (name.encode(), value.encode())
    )
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(b"\0" + len(body).to_bytes(2, "little") + b"\0" + body)
        answer = b""
        while b"\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    line = answer.split(b"\n", 1)[0].decode("latin-1").split()
    if len(line) < 2 or not line[0].startswith("HTTP/") or not line[1].isdigit():
        raise OSError(f"not an HTTP answer over the uwsgi protocol: {answer[:80]!r}")
    return int(line[1])


class AppServer:
    """What the release cycle asks of the server in a slot (APP_SERVERS names each)."""

    def __init__(self, cycle: Cycle) -> None:
        self.cycle = cycle

    def health_status(self, slot: str) -> int:
        """The status code of the health path, asked over the slot's own socket."""
        raise NotImplementedError

    def scale(self, slot: str, pid: int, change: int, dry_run: bool) -> str:
        """Add (change > 0) or remove workers of the running master `pid`: what was done."""
        raise NotImplementedError

    def stop_gracefully(self, slot: str, pid: int) -> None:
        """Let the master finish its requests and exit (nothing: its stop signal does that)."""


class Gunicorn(AppServer):
    """HTTP over the slot's socket; TTIN and TTOU add and remove a worker; TERM stops
    gracefully."""

    def health_status(self, slot: str) -> int:
        cycle = self.cycle
        return http_status(UnixHTTPConnection(cycle.socket_of(slot), 5), cycle.health_path, cycle.health_host)

    def scale(self, slot: str, pid: int, change: int, dry_run: bool) -> str:
        sig = signal.SIGTTIN if change > 0 else signal.SIGTTOU
        if not dry_run:
            for _ in range(abs(change)):
                os.kill(pid, sig)
                time.sleep(0.2)
        verb = "would send" if dry_run else "sent"
        return (
            f"{verb} {sig.name} x{abs(change)} to master {pid} (slot {slot}): this lasts until the "
            f"next restart or deploy; set gunicorn_workers to keep it"
        )


class Uwsgi(AppServer):
    """The uwsgi protocol over the slot's socket; the master FIFO (in the slot's runtime
    directory) adds (`+`) and removes (`-`) a worker in manual cheaper mode, between one and
    the ini's `processes`, and stops gracefully (`q`)."""

    def fifo(self, slot: str) -> Path:
        return Path(self.cycle.release_marker.format(slot=slot)).parent / "uwsgi.fifo"

    def tell(self, slot: str, commands: str) -> None:
        """Write to the master's FIFO (opened without blocking: a master that is gone fails)."""
        try:
            fd = os.open(self.fifo(slot), os.O_WRONLY | os.O_NONBLOCK)
        except OSError as error:
            raise CycleError(
                f"cannot reach slot {slot}'s uWSGI master FIFO {self.fifo(slot)}: {error}"
            ) from None
        try:
            os.write(fd, commands.encode())
        finally:
            os.close(fd)

    def health_status(self, slot: str) -> int:
        cycle = self.cycle
        return uwsgi_status(cycle.socket_of(slot), cycle.health_path, cycle.health_host, 5)

    def workers(self, pid: int) -> int:
        found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
        return len(found.stdout.split())

    def ceiling(self, pid: int) -> int:
        """The ini's `processes`, which manual cheaper mode never exceeds."""
        try:
            words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            ini = Path(words[words.index(b"--ini") + 1].decode())
            for line in ini.read_text().splitlines():
                name, _, value = line.partition("=")
                if name.strip() == "processes" and value.strip().isdigit():
                    return int(value.strip())
        except (OSError, ValueError, IndexError):
            pass
        return 0

    def scale(self, slot: str, pid: int, change: int, dry_run: bool) -> str:
        now, ceiling = self.workers(pid), self.ceiling(pid)
        target = now + change
        if target < 1:
            raise CycleError(f"slot {slot} runs {now} uWSGI worker(s): it cannot go below one")
        if ceiling and target > ceiling:
            raise CycleError(
                f"slot {slot} runs {now} uWSGI worker(s) of at most {ceiling} (uwsgi_max_processes): "
                f"{change:+d} would make {target}. Raise uwsgi_max_processes and deploy to go higher"
            )
        if not dry_run:
            for _ in range(abs(change)):
                self.tell(slot, "+" if change > 0 else "-")
                time.sleep(0.3)  # the master reads one command per wake-up
        verb = "would write" if dry_run else "wrote"
        sign = "+" if change > 0 else "-"
        return (
            f"{verb} {sign} x{abs(change)} to master {pid}'s FIFO (slot {slot}): {now} -> {target} "
            f"workers until the next restart or deploy; set uwsgi_processes to keep it"
        )

    def stop_gracefully(self, slot: str, pid: int) -> None:
        with contextlib.suppress(CycleError):
            self.tell(slot, "q")
            wait_exit(pid, self.cycle.graceful_seconds)


APP_SERVERS: dict[str, type[AppServer]] = {"gunicorn": Gunicorn, "uwsgi": Uwsgi}


def boot(cycle: Cycle) -> str:
    """supervisor's boot program: start the live slot, as systemd starts its enabled units."""
    live = cycle.live_slot()
    if not live:
        return f"{cycle.app}: nothing is live yet"
    if cycle.manager.main_pid(live):
        return f"{cycle.app}: slot {live} is already running"
    if not cycle.manager.start(live):
        raise CycleError(f"slot {live} did not start:\n{cycle.manager.log_tail(live, cycle.journal_lines)}")
    return f"{cycle.app}: started slot {live}"


def cooldown(cycle: Cycle, slot: str) -> str:
    """supervisor's cooldown program: the retired slot stays warm, then stops (never the live)."""
    time.sleep(max(cycle.warm_seconds, 0))
    if cycle.live_slot() == slot:
        return f"{cycle.app}: slot {slot} is live again; left running"
    cycle.manager.stop(slot)
    return f"{cycle.app}: slot {slot} stopped after {cycle.warm_seconds} s warm"


# --- lock and audit ------------------------------------------------------------------------
def read_lock(cycle: Cycle) -> dict[str, Any] | None:
    try:
        return json.loads(cycle.lock_file.read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        return {"holder": "unreadable lock file", "since": "?"}


def acquire_lock(cycle: Cycle, holder: str) -> None:
    record = {"holder": holder, "since": now(), "pid": os.getpid()}
    try:
        fd = os.open(cycle.lock_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        held = read_lock(cycle) or {}
        raise CycleError(
            f"{cycle.app} is locked by {held.get('holder', '?')} since {held.get('since', '?')}; "
            f"another deploy or rollback is running. If it is not, clear the lock with "
            f"`fab unlock` (or gunship-release {cycle.app} unlock)."
        ) from None
    with os.fdopen(fd, "w") as handle:
        json.dump(record, handle)


# Run by the target's Python: what its wheelhouse must be built for.
TARGET_PROBE = (
    "import json, os, platform, sys; print(json.dumps({'python': '%d.%d' % sys.version_info[:2],"
    " 'machine': platform.machine(), 'glibc': os.confstr('CS_GNU_LIBC_VERSION').split()[1]}))"
)


def target_of(python: str) -> dict[str, str]:
    try:
        probe = subprocess.run([python, "-c", TARGET_PROBE], capture_output=True, text=True, check=False)
    except OSError as error:
        raise CycleError(f"release_python {python} cannot run on this host: {error.strerror}") from None
    if probe.returncode != 0:
        raise CycleError(f"release_python {python} failed: {(probe.stderr or probe.stdout).strip()}")
    return json.loads(probe.stdout)


def live_state(cycle: Cycle) -> dict[str, Any]:
    """The live slot and the live release's record: what a deploy reads once it holds the lock."""
    record: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        record = json.loads((cycle.root / "current" / "release.json").read_text())
    # Every release that may be switched to again: a redeploy of an identical build goes back
    # to one of these instead of installing the same files as a new release.
    reusable = [
        {"id": rid} | {key: rec.get(key) for key in ("wheel_sha256", "wheelhouse_digest")}
        for rid, rec in cycle.records().items()
    ]
    return {"live_slot": cycle.live_slot() or "", "live_release": record, "releases": reusable}


def replace_settings(cycle: Cycle, text: str, dry_run: bool) -> bool:
    """Write a deploy's settings (cycle.json) under its lock; whether they changed. Two app
    servers or process managers must never run the same slots: each would stop what it did not
    start, and both would hold the same sockets. While a slot runs under the ones the old
    settings name, settings that name others are refused, and the app is left as it was."""
    path = CONFIG_DIR / cycle.app / "cycle.json"
    try:
        old_text = path.read_text()
    except FileNotFoundError:
        old_text = None
    if old_text == text:
        return False
    if old_text is not None:
        with contextlib.suppress(ValueError, TypeError, KeyError, OSError):  # unreadable: nothing runs
            old = Cycle.from_text(old_text)
            moved = (old.app_server, old.process_manager) != (cycle.app_server, cycle.process_manager)
            live = old.live_slot() if moved else None
            if live and old.manager.main_pid(live):
                raise CycleError(
                    f"app_server is {json.dumps(cycle.app_server)} and app_process_manager is "
                    f"{json.dumps(cycle.process_manager)}, but {cycle.app} already runs on "
                    f"{socket.gethostname()} as {old.app_server} under {old.process_manager} (slot {live}). "
                    "Gunship does not move a running app between app servers or process managers: "
                    "set them back, or stop the app's slots under the old ones first (the page is "
                    "down until the next deploy). The app was left as it was."
                )
    if not dry_run:
        atomic_write(path, text)
    return True


def audit(cycle: Cycle, **entry: Any) -> None:
    line = json.dumps({"time": now(), "app": cycle.app, **entry}, sort_keys=True)
    with cycle.audit_log.open("a") as handle:
        handle.write(line + "\n")


# --- a settled host ------------------------------------------------------------------------
# A deploy that ends well on a host records there what it was asked (the control node's
# fingerprint of its inputs: Gunship's own files, the host's settings and facts, see the release
# role's vars) and what it left: every file the roles ensure (the manifest), the live release
# and whether its slot runs it, Nginx running, the maintenance page. A later deploy with the same
# fingerprint that finds the host as it was left has nothing to do there: asked before the run
# changes anything (settled), the host says so, and the run leaves it alone. Anything changed by
# hand (a file, a stopped service, a rollback) makes the host unsettled: the next deploy runs in
# full. A run that takes the lock forgets the record first: if it fails half-way, none is left.
def file_state(path: str, whole: bool) -> str:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "absent"
    except OSError as error:
        return f"unreadable ({error.strerror})"
    if stat.S_ISLNK(st.st_mode):
        return f"link to {os.readlink(path)}"
    attributes = f"{st.st_uid}:{st.st_gid} {stat.S_IMODE(st.st_mode):o}"
    if stat.S_ISDIR(st.st_mode):
        return f"directory {attributes}"
    if not stat.S_ISREG(st.st_mode):
        return f"special {attributes}"
    if not whole:
        return f"file {attributes}"
    with open(path, "rb") as handle:
        return f"file {attributes} {hashlib.sha256(handle.read()).hexdigest()}"


def observed(cycle: Cycle) -> str:
    """sha256 over the state of the host a deploy leaves for the app."""
    try:
        manifest = json.loads(cycle.manifest.read_text())
    except (OSError, ValueError):
        manifest = {}
    lines = [f"{path}: {file_state(path, kind == 'whole')}" for path, kind in sorted(manifest.items())]
    live = cycle.live_slot()
    if live:
        lines += [
            f"live: {live}, release {cycle.slot_release(live)}, running {cycle.running_release(live)}",
            f"at boot: {cycle.manager.boot_state(live)}",
        ]
    lines += [
        f"current: {os.path.realpath(cycle.root / 'current')}",
        f"nginx: active {is_active('nginx')}, {enablement('nginx')}",
        f"maintenance: {bool(cycle.maintenance_page) and os.path.exists(cycle.maintenance_page)}",
    ]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def host_facts() -> str:
    """What the roles read of the host, read here: deploy.yml gathers Ansible's facts only on a
    host that is not settled. Its distribution, machine, Python and CPUs (the workers' default
    count): a host upgraded or resized in place is not settled."""

    def text(path: str) -> str:
        try:
            return Path(path).read_text()
        except OSError:
            return ""

    topology = {"physical id", "core id", "cpu cores", "siblings"}
    cpus = sorted(
        {line for line in text("/proc/cpuinfo").splitlines() if line.split(":")[0].strip() in topology}
    )
    usable = len(os.sched_getaffinity(0))
    return json.dumps(
        [text("/etc/os-release"), os.uname().machine, sys.version, os.cpu_count(), usable, cpus]
    )


def fingerprint_here(fingerprint: str) -> str:
    """The control node's fingerprint of the run's inputs, with the host's own facts."""
    return hashlib.sha256(f"{fingerprint}\n{host_facts()}".encode()).hexdigest()


def is_settled(cycle: Cycle, fingerprint: str) -> bool:
    try:
        record = json.loads(cycle.settled_file.read_text())
    except (OSError, ValueError):
        return False
    if record.get("fingerprint") != fingerprint_here(fingerprint):
        return False  # other inputs: what the host is like need not be read
    return record.get("observed") == observed(cycle)


def settle(cycle: Cycle, fingerprint: str) -> None:
    """Record, at the end of a deploy that went well, what it was asked and what it left."""
    record = {"fingerprint": fingerprint_here(fingerprint), "observed": observed(cycle), "at": now()}
    cycle.settled_file.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(cycle.settled_file, json.dumps(record) + "\n", 0o600)


# --- the switch ----------------------------------------------------------------------------
def activate(cycle: Cycle, release: str, action: str, by: str, force: bool, dry_run: bool) -> dict[str, Any]:
    records = cycle.records()
    if release not in records:
        raise CycleError(f"release {release!r} is not on this host; releases: {', '.join(records) or 'none'}")
    live = cycle.live_slot()
    running = cycle.running_release(live) if live else None
    live_release = running or (cycle.slot_release(live) if live else None)
    if live and running == release and not force:
        return {
            "action": action,
            "changed": False,
            "to": release,
            "slot": live,
            "message": f"release {release} is already live in slot {live}",
        }
    idle = cycle.idle_slot()
    warm = cycle.running_release(idle) == release and not force
    plan = {
        "action": action,
        "changed": True,
        "from": live_release,
        "to": release,
        "slot": idle,
        "warm": warm,
        "by": by,
    }
    if dry_run:
        return {
            **plan,
            "dry_run": True,
            "message": f"would start {release} in slot {idle} ({'warm' if warm else 'cold'}), "
            f"gate it, and switch Nginx from {live or 'nothing'} to {idle}",
        }
    started = time.monotonic()
    phases: dict[str, float] = {}
    manager = cycle.manager
    try:
        manager.cancel_stop_later(idle)
        atomic_symlink(cycle.releases_dir / release, cycle.slot_link(idle))
        if not warm:  # the idle slot serves nobody: it starts afresh with the release
            if not manager.start(idle):
                raise CycleError(
                    f"slot {idle} did not start release {release}:\n"
                    f"{manager.log_tail(idle, cycle.journal_lines)}"
                )
            phases["start"] = time.monotonic() - started
        mark = time.monotonic()
        wait_healthy(cycle, idle)
        phases["health"] = time.monotonic() - mark
        mark = time.monotonic()
        point_nginx_at(cycle, idle)
        atomic_symlink(cycle.releases_dir / release, cycle.root / "current")
        atomic_symlink(idle, cycle.live_link)
        phases["switch"] = time.monotonic() - mark
        problem = front_healthy(cycle)
        if problem:
            if live and live_release:
                point_nginx_at(cycle, live)
                atomic_symlink(cycle.releases_dir / live_release, cycle.root / "current")
                atomic_symlink(live, cycle.live_link)
            raise CycleError(
                f"after the switch to slot {idle}, {cycle.health_path} through Nginx "
                f"gave {problem}; switched back to slot {live or 'nothing'}"
            )
        manager.at_boot(idle, live)
        if live:
            retire(cycle, live)
    except CycleError as error:
        if not warm and cycle.live_slot() != idle:
            manager.stop(idle)
        audit(
            cycle,
            action=action,
            by=by,
            to=release,
            outcome="failed",
            duration_s=round(time.monotonic() - started, 3),
            reason=str(error).splitlines()[0],
            **{"from": live_release},
        )
        raise
    duration = round(time.monotonic() - started, 3)
    audit(
        cycle,
        action=action,
        by=by,
        to=release,
        outcome="success",
        slot=idle,
        warm=warm,
        duration_s=duration,
        phases={k: round(v, 3) for k, v in phases.items()},
        **{"from": live_release},
    )
    return {
        **plan,
        "duration_s": duration,
        "phases": phases,
        "message": f"{action}: {live_release or 'nothing'} -> {release} in slot {idle} "
        f"({'warm' if warm else 'cold'}, {duration:.2f} s)",
    }


def retire(cycle: Cycle, slot: str) -> None:
    """The old slot drains; it stops now, or stays warm for warm_seconds for a fast rollback."""
    cycle.manager.cancel_stop_later(slot)
    if cycle.warm_seconds <= 0:
        cycle.manager.stop(slot)
    else:
        cycle.manager.stop_later(slot)


def rollback_target(cycle: Cycle, to: str | None) -> str:
    records = cycle.records()
    slot = cycle.live_slot()
    live = (cycle.running_release(slot) or cycle.slot_release(slot)) if slot else None
    if to:
        if to not in records:
            raise CycleError(f"cannot roll back to {to!r}: not on this host; releases: {', '.join(records)}")
        if to == live:
            raise CycleError(f"cannot roll back to {to}: it is already live")
        return to
    # A release that failed its gate is removed by the deploy that made it: never here.
    candidates = [rid for rid in records if rid != live]
    previous = records.get(live or "", {}).get("previous")
    if previous in candidates:
        return previous
    older = [
        rid
        for rid in candidates
        if records[rid].get("deployed_at", "") < records.get(live or "", {}).get("deployed_at", "~")
    ]
    if not older:
        others = [rid for rid in candidates if rid not in older]
        raise CycleError(
            f"nothing to roll back to: no release on this host is older than the live one "
            f"({live or 'none'})"
            + (f"; newer ones can be named with --to: {', '.join(others)}" if others else "")
        )
    return older[-1]


# --- reports -------------------------------------------------------------------------------
def status(cycle: Cycle) -> dict[str, Any]:
    live = cycle.live_slot()
    report: dict[str, Any] = {"app": cycle.app, "live_slot": live}
    if not live:
        return {**report, "healthy": False, "message": "no live slot: the app has not been activated"}
    pid = cycle.manager.main_pid(live)
    workers = (
        len(
            subprocess.run(
                ["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False
            ).stdout.split()
        )
        if pid
        else 0
    )
    release = cycle.running_release(live) or cycle.slot_release(live)
    record = cycle.records().get(release or "", {})
    try:
        wait_healthy(Cycle(**{**cycle.__dict__, "health_timeout": 3}), live)
        healthy = True
    except CycleError:
        healthy = False
    idle = cycle.idle_slot()
    warm = cycle.running_release(idle)
    return {
        **report,
        "release": release,
        "version": record.get("version"),
        "workers": workers,
        "healthy": healthy,
        "active_since": cycle.manager.started_at(live) if pid else "",
        "process_manager": cycle.process_manager,
        "app_server": cycle.app_server,
        "pid": pid,
        "warm_slot": idle if warm else None,
        "warm_release": warm,
    }


def releases(cycle: Cycle) -> list[dict[str, Any]]:
    live = cycle.live_slot()
    live_release = (cycle.running_release(live) or cycle.slot_release(live)) if live else None
    warm_release = cycle.running_release(cycle.idle_slot())
    return [
        {
            "id": rid,
            "version": rec.get("version"),
            "deployed_at": rec.get("deployed_at"),
            "deployed_by": rec.get("deployed_by"),
            "live": rid == live_release,
            "warm": rid == warm_release and rid != live_release,
            "schema": (rec.get("schema") or {}).get("summary"),
        }
        for rid, rec in cycle.records().items()
    ]


def prune(cycle: Cycle, keep: int, also_keep: list[str], dry_run: bool) -> list[str]:
    """Remove releases beyond the newest `keep` (by directory age), never the live one, one a slot
    points at, or one named in also_keep. Returns the removed releases' names."""
    by_age = sorted(
        (path for path in cycle.releases_dir.iterdir() if path.is_dir() and not path.is_symlink()),
        key=lambda path: path.stat().st_mtime,
        reverse=True,
    )
    kept = {path.name for path in by_age[:keep]} | set(also_keep)
    kept |= {cycle.slot_release(slot) for slot in cycle.slots} - {None}
    kept |= {live_state(cycle)["live_release"].get("id")} - {None}
    removed = [path for path in by_age if path.name not in kept]
    if not dry_run:
        for path in removed:
            shutil.rmtree(path)
    return [path.name for path in removed]


def install(
    cycle: Cycle, release: str, archive: Path, lock: str, record: dict[str, Any], static_dir: str, python: str
) -> dict[str, Any]:
    """A new release in one call: its directory, the wheelhouse unpacked from `archive` (wheels/,
    sent by the deploy), a venv without pip of its own (a release never changes once installed),
    the app and its dependencies installed by the host's pip offline, by hash, exactly as the
    lock file pins them; the static files linked (static_dir: relative to site-packages); the
    record written last. A failure leaves what was made for the deploy to remove."""
    path = cycle.releases_dir / release
    if path.exists():
        raise CycleError(
            f"release_id {release!r} already exists on {socket.gethostname()} at {path}: releases are "
            "never overwritten. Choose another id, or leave release_id empty for a timestamp."
        )
    path.mkdir(mode=0o755)
    try:
        steps = [
            ["tar", "-C", str(path), "-xf", str(archive)],
            [python, "-m", "venv", "--without-pip", str(path / "venv")],
            [python, "-m", "pip", "--python", str(path / "venv" / "bin" / "python"), "install", "--no-index",
             "--no-cache-dir", "--disable-pip-version-check", "--require-hashes", "--quiet",
             f"--find-links={path / 'wheels'}", f"--requirement={path / 'wheels' / lock}"],
        ]  # fmt: skip
        for step in steps:
            run = subprocess.run(step, capture_output=True, text=True, check=False)
            if run.returncode != 0:
                output = (run.stderr or run.stdout).strip()
                raise CycleError(f"{' '.join(step)} failed (exit {run.returncode}):\n{output}")
    finally:
        archive.unlink(missing_ok=True)
    if static_dir:
        probe = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
        purelib = subprocess.run(
            [str(path / "venv" / "bin" / "python"), "-c", probe], capture_output=True, text=True, check=True
        ).stdout.strip()
        static = Path(purelib, static_dir)
        if not static.is_dir():
            raise CycleError(
                f"app_static_dir (release_static_dir) is {static_dir!r}, but the release has no directory "
                f"{static}: name a directory the app's wheel installs (its package data), relative to "
                "site-packages."
            )
        (path / "static").symlink_to(static)
    written = path / ".release.json.tmp"
    written.write_text(json.dumps(record, indent=4, sort_keys=True) + "\n")
    written.chmod(0o644)
    written.replace(path / "release.json")
    return {"changed": True, "release": release, "path": str(path)}


def release_line(row: dict[str, Any]) -> str:
    marks = [mark for mark in ("live", "warm") if row[mark]]
    fields = [row["id"], row["version"], row["deployed_at"], row["deployed_by"], *marks]
    return "  ".join(map(str, fields))


def scale(cycle: Cycle, change: str, dry_run: bool) -> str:
    if change[:1] not in "+-" or not change[1:].isdigit() or int(change[1:]) == 0:
        raise CycleError(f"--workers is {change!r}: give +N or -N, such as +2 or -1")
    live = cycle.live_slot()
    pid = cycle.manager.main_pid(live) if live else 0
    if not pid:
        raise CycleError(f"{cycle.app} has no running master to scale")
    return cycle.server.scale(live, pid, int(change), dry_run)


def stop_gracefully(cycle: Cycle, slot: str) -> str:
    """A slot's graceful stop, for app servers whose stop is not a signal (systemd's ExecStop,
    supervisor's stop): the master finishes its requests and exits."""
    pid = int(os.environ.get("MAINPID") or 0) or cycle.manager.main_pid(slot)
    if not pid:
        return f"{cycle.app}: slot {slot} is not running"
    cycle.server.stop_gracefully(slot, pid)
    return f"{cycle.app}: slot {slot} stopped gracefully"


# --- the import gate -----------------------------------------------------------------------
# Run by the release's own Python, as the app user, with the app's environment, in the release:
#   RELEASE/venv/bin/python /usr/local/sbin/gunship-release APP check-import SPEC
def load_callable(spec: str) -> object:
    """The WSGI callable as Gunicorn loads it: `module`, `module:name` or `module:factory(args)`
    with literal arguments."""
    module_name, _, expression = spec.partition(":")
    module = importlib.import_module(module_name)
    expression = expression or "application"
    tree = ast.parse(expression, mode="eval").body
    if isinstance(tree, ast.Call):
        if not isinstance(tree.func, ast.Name):
            raise ValueError(f"{expression!r}: only a plain function name may be called")
        factory = getattr(module, tree.func.id)
        args = [ast.literal_eval(arg) for arg in tree.args]
        kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in tree.keywords}
        return factory(*args, **kwargs)
    if not isinstance(tree, ast.Name):
        raise ValueError(f"{expression!r}: expected a name or a factory call")
    return getattr(module, tree.id)


def interface_of(app: object) -> str | None:
    """ "asgi" when calling the app makes a coroutine (ASGI 3: `async (scope, receive, send)`),
    "wsgi" when it takes (environ, start_response); None when its signature says neither."""
    call = app if inspect.isroutine(app) else type(app).__call__.__get__(app)  # its bound __call__
    if inspect.iscoroutinefunction(call):
        return "asgi"
    try:
        parameters = inspect.signature(call).parameters.values()
    except (TypeError, ValueError):
        return None
    kinds = [p.kind for p in parameters if p.default is inspect.Parameter.empty]
    if inspect.Parameter.VAR_POSITIONAL in kinds:
        return None
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return {2: "wsgi", 3: "asgi"}.get(sum(kind in positional for kind in kinds))


INTERFACE_SHAPES = {
    "wsgi": "a WSGI app (it takes environ and start_response)",
    "asgi": "an ASGI app (an async callable of scope, receive and send)",
}


def check_import(spec: str, interface: str = "wsgi") -> int:
    """0 when the callable imports, is callable and is of the app's interface (app_interface);
    otherwise the reason on stderr and 1."""
    # Gunicorn puts its working directory (the release) first on the path, not this script's.
    sys.path[0] = os.getcwd()
    kind = interface.upper()
    try:
        app = load_callable(spec)
    except Exception:
        print(f"the {kind} callable {spec!r} does not import in this release:", file=sys.stderr)
        traceback.print_exc(limit=-3)
        return 1
    if not callable(app):
        print(f"{spec!r} imported, but it is a {type(app).__name__}, not a {kind} callable", file=sys.stderr)
        return 1
    found = interface_of(app)
    if found and found != interface:
        print(
            f"{spec!r} is {INTERFACE_SHAPES[found]}, but app_interface is {interface!r}: "
            f"set app_interface: {found}, or app_wsgi to the app's {kind} callable",
            file=sys.stderr,
        )
        return 1
    print(f"{spec} imports: {type(app).__module__}.{type(app).__qualname__} ({found or 'callable'})")
    return 0


# --- day two: a command as the app, logs, maintenance, the schema's state -----------------
def live_release_dir(cycle: Cycle) -> Path:
    current = cycle.root / "current"
    if not current.exists():
        raise CycleError(f"no live release: {current} is missing (has the app been deployed?)")
    return current.resolve()


def as_app(cycle: Cycle, release: Path, command: list[str], timeout: float | None = None) -> list[str]:
    """`command` as the slots run the app: as its user and group, with its environment file, in
    the release, its venv first on PATH (gunship-exec)."""
    return (
        [cycle.exec_tool, f"--user={cycle.user}", f"--group={cycle.group}", "--umask=027",
         f"--chdir={release}", f"--setenv=PATH={release / 'venv' / 'bin'}:/usr/local/bin:/usr/bin:/bin",
         f"--setenv=GUNSHIP_RELEASE_ID={release.name}"]
        + ([f"--env-file={cycle.env_file}"] if cycle.env_file else [])
        + ([f"--timeout={timeout:g}"] if timeout else [])
        + ["--", *command]
    )  # fmt: skip


def exec_as_app(cycle: Cycle, command: list[str], by: str) -> int:
    """Replace this process by `command` in the live release (its terminal, if any, is kept).
    Who ran what goes into the audit log first; the environment's values never do."""
    if not command:
        raise CycleError("exec needs a command: gunship-release APP exec -- COMMAND [ARG ...]")
    release = live_release_dir(cycle)
    audit(cycle, action="exec", outcome="started", by=by, to=release.name, command=shlex.join(command))
    argv = as_app(cycle, release, command)
    os.execv(argv[0], argv)
    return 127  # not reached


def log_sources(cycle: Cycle, lines: int, follow: bool) -> dict[str, list[str]]:
    """What `logs` prints, by tag: the app's slot (the live one; both when following, so a
    switch during the follow is seen), then each of the app's Nginx logs."""
    live = cycle.live_slot()
    slots = list(cycle.slots) if follow else [live] if live else []
    sources = {"app": cycle.manager.log_command(slots, lines, follow)} if slots else {}
    for tag, path in cycle.nginx_logs.items():
        sources[tag] = ["tail", "-q", "-n", str(lines), *(["-F"] if follow else []), path]
    return sources


def print_logs(cycle: Cycle, lines: int, follow: bool) -> int:
    """Each source's lines, each line prefixed with its source's tag; followed until stopped."""
    out = threading.Lock()

    def pump(tag: str, argv: list[str]) -> None:
        with subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        ) as child:
            assert child.stdout is not None
            for line in child.stdout:
                with out:
                    sys.stdout.write(f"{tag:<12} {line}")
                    sys.stdout.flush()

    sources = log_sources(cycle, lines, follow)
    if not follow:  # one source after another
        for tag, argv in sources.items():
            pump(tag, argv)
        return 0
    pumps = [threading.Thread(target=pump, args=item, daemon=True) for item in sources.items()]
    for thread in pumps:
        thread.start()
    try:
        for thread in pumps:
            thread.join()
    except KeyboardInterrupt:
        return 130
    return 0


def maintenance(cycle: Cycle, state: str, message: str | None, by: str, dry_run: bool) -> dict[str, Any]:
    """Turn the maintenance page on (written from the deployed template, with `message`) or off
    (removed). Nginx answers the app's requests with it (503, Retry-After) while it exists,
    health checks and static files excepted: a file, so it outlives reloads and deploys."""
    if not cycle.maintenance_page:
        raise CycleError("this host's release settings name no maintenance page: deploy again first")
    page = Path(cycle.maintenance_page)
    record_file = page.with_suffix(".json")
    was: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        was = json.loads(record_file.read_text()) if page.exists() else {}
    if state == "status":
        return {"maintenance": page.exists(), "changed": False, **was}
    if state == "off":
        was_on = page.exists()
        if was_on and not dry_run:
            page.unlink()
            record_file.unlink(missing_ok=True)
            audit(cycle, action="maintenance", outcome="off", by=by)
        return {"maintenance": False, "changed": was_on, "dry_run": dry_run}
    text = message or "The site is down for maintenance and will be back shortly."
    try:
        template = Path(cycle.maintenance_template).read_text()
    except OSError as error:
        raise CycleError(f"the maintenance template is missing ({error}): deploy again first") from None
    body = template.replace(cycle.maintenance_mark, html.escape(text)) if cycle.maintenance_mark else template
    changed = not page.exists() or page.read_text() != body
    record = {"since": was.get("since") or now(), "by": by, "message": text}
    if changed and not dry_run:
        page.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(page, body, 0o644)
        atomic_write(record_file, json.dumps(record) + "\n", 0o644)
        audit(cycle, action="maintenance", outcome="on", by=by, reason=text)
    return {"maintenance": True, "changed": changed, "dry_run": dry_run, **record}


def record_schema(cycle: Cycle, release: str) -> dict[str, Any]:
    """Run app_schema_command in `release` as the app and keep what it printed (a digest and its
    last line) in the release's release.json, for rollbacks to compare."""
    path = cycle.releases_dir / release
    if not (path / "release.json").exists():
        raise CycleError(f"release {release!r} is not on this host")
    if not cycle.schema_command:
        return {"changed": False, "schema": None}
    argv = as_app(cycle, path, ["/bin/sh", "-c", cycle.schema_command], timeout=cycle.schema_timeout)
    run = subprocess.run(argv, capture_output=True, text=True, errors="replace", check=False)
    if run.returncode != 0:
        last = "\n".join((run.stderr.strip() or run.stdout.strip() or "no output").splitlines()[-12:])
        raise CycleError(
            f"app_schema_command `{cycle.schema_command}` failed in release {release} (exit "
            f"{run.returncode}), run as {cycle.user} with the app's environment. Its last lines:\n{last}"
        )
    output = run.stdout.strip()
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    schema = {
        "digest": hashlib.sha256(output.encode()).hexdigest()[:12],
        "summary": (lines[-1] if lines else "(no output)")[:160],
        # What a refusal compares line by line (a migration plan is a few hundred lines).
        "state": [line[:200] for line in lines[:SCHEMA_LINES]],
    }
    record = json.loads((path / "release.json").read_text())
    changed = record.get("schema") != schema
    if changed:
        atomic_write(
            path / "release.json", json.dumps(record | {"schema": schema}, indent=4, sort_keys=True) + "\n"
        )
    return {"changed": changed, "schema": schema}


def schema_refusal(cycle: Cycle, target: str) -> str | None:
    """Why a rollback to `target` may break the app: its recorded schema state is not the live
    release's. None when both agree, or either was never recorded."""
    records = cycle.records()
    live = live_state(cycle)["live_release"].get("id")
    ours, theirs = records.get(live or "", {}).get("schema"), records.get(target, {}).get("schema")
    if not ours or not theirs or ours["digest"] == theirs["digest"]:
        return None
    only_live = [line for line in ours.get("state", []) if line not in theirs.get("state", [])]
    only_target = [line for line in theirs.get("state", []) if line not in ours.get("state", [])]
    differences = "".join(
        f"; only {whose} has {len(found)} line(s): "
        + ", ".join(map(repr, found[:5]))
        + (", ..." if found[5:] else "")
        for whose, found in ((f"the live release {live}", only_live), (f"release {target}", only_target))
        if found
    )
    return (
        f"release {target} was deployed with the schema state {theirs['summary']!r} ({theirs['digest']}), "
        f"but the live release {live} has {ours['summary']!r} ({ours['digest']}){differences}. The older "
        "code may not work with the database as it is now. Bring the schema back first, or roll back "
        "anyway with --force (fab rollback --force; rollback_force=true for the playbook)."
    )


# --- command line --------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gunship-release", description=__doc__.splitlines()[0])
    parser.add_argument("app")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("status", "releases"):
        commands.add_parser(name).add_argument("--json", action="store_true")
    act = commands.add_parser("activate")
    act.add_argument("release")
    act.add_argument("--action", default="deploy")
    act.add_argument("--force", action="store_true")
    act.add_argument("--prune", type=int, metavar="KEEP", help="then prune as `prune --keep KEEP` does")
    act.add_argument("--keep-release", action="append", default=[], help="with --prune: never this one")
    act.add_argument(
        "--unlock", action="store_true", help="then release the deploy lock, once the switch is done"
    )
    act.add_argument("--settle", metavar="FINGERPRINT", help="with --unlock: record the host as settled")
    back = commands.add_parser("rollback")
    back.add_argument("--to")
    back.add_argument("--force", action="store_true", help="even to a release with another schema state")
    maint = commands.add_parser("maintenance")
    maint.add_argument("state", choices=["on", "off", "status"])
    maint.add_argument("--message")
    run_as = commands.add_parser("exec")
    run_as.add_argument("argv", nargs=argparse.REMAINDER, help="-- COMMAND [ARG ...]")
    for sub in (act, back, maint, run_as):
        sub.add_argument("--by", default=os.environ.get("SUDO_USER") or os.environ.get("USER") or "root")
    for sub in (act, back, maint):
        sub.add_argument("--dry-run", action="store_true")
    logs = commands.add_parser("logs")
    logs.add_argument("--lines", type=int, default=50)
    logs.add_argument("--follow", action="store_true")
    commands.add_parser("slot-logs").add_argument("--lines", type=int, default=15)
    commands.add_parser("schema").add_argument("release")
    lock = commands.add_parser("lock")
    lock.add_argument("--holder", required=True)
    lock.add_argument("--python", help="also report what this Python on the host is")
    lock.add_argument("--dry-run", action="store_true", help="report, without taking the lock")
    lock.add_argument("--settings", help="cycle.json's new content, written under the lock")
    commands.add_parser("settled").add_argument("--fingerprint", required=True)
    unlock = commands.add_parser("unlock")
    unlock.add_argument("--dry-run", action="store_true")
    unlock.add_argument("--settle", metavar="FINGERPRINT", help="first record the host as settled")
    sc = commands.add_parser("scale")
    sc.add_argument("workers")
    sc.add_argument("--dry-run", action="store_true")
    pr = commands.add_parser("prune")
    pr.add_argument("--keep", type=int, required=True)
    pr.add_argument("--keep-release", action="append", default=[], help="never remove this one")
    pr.add_argument("--dry-run", action="store_true")
    ins = commands.add_parser("install")
    ins.add_argument("release")
    ins.add_argument("--archive", type=Path, required=True, help="the wheelhouse as a tar of wheels/")
    ins.add_argument("--lock", required=True, help="the lock file's name in wheels/")
    ins.add_argument("--record", type=json.loads, required=True, help="release.json's content, as JSON")
    ins.add_argument("--static-dir", default="")
    ins.add_argument("--python", default="/usr/bin/python3")
    aud = commands.add_parser("audit")
    for flag in ("--action", "--outcome"):
        aud.add_argument(flag, required=True)
    for flag in ("--to", "--from", "--reason"):
        aud.add_argument(flag)
    aud.add_argument("--by", default="root")
    commands.add_parser("boot")
    commands.add_parser("cooldown").add_argument("slot")
    commands.add_parser("stop-gracefully").add_argument("slot", choices=["blue", "green"])
    gate = commands.add_parser("check-import")
    gate.add_argument("spec")
    gate.add_argument("--interface", choices=sorted(INTERFACE_SHAPES), default="wsgi")
    args = parser.parse_args(argv)
    if args.command == "check-import":  # needs no settings: it runs as the app, in a release
        return check_import(args.spec, args.interface)
    try:
        # A deploy's lock brings the settings it writes: the app's first has none on the host.
        settings = getattr(args, "settings", None)
        cycle = Cycle.from_text(settings) if settings else Cycle.load(args.app)
        return run(cycle, args)
    except CycleError as error:
        print(f"gunship-release {args.app}: {error}", file=sys.stderr)
        return 1


def run(cycle: Cycle, args: argparse.Namespace) -> int:
    if args.command == "status":
        print(
            json.dumps(status(cycle))
            if args.json
            else "\n".join(f"{k}: {v}" for k, v in status(cycle).items())
        )
    elif args.command == "releases":
        rows = releases(cycle)
        print(json.dumps(rows) if args.json else "\n".join(map(release_line, rows)))
    elif args.command == "activate":
        done = activate(cycle, args.release, args.action, args.by, args.force, args.dry_run)
        if args.prune is not None:  # this release, the live one before it and the slots' are kept
            done["removed"] = prune(cycle, args.prune, [args.release, *args.keep_release], args.dry_run)
        if args.unlock and not args.dry_run:  # a deploy with nothing left to do under its lock
            if args.settle:
                settle(cycle, args.settle)
            cycle.lock_file.unlink(missing_ok=True)
            done["unlocked"] = True
        print(json.dumps(done))
    elif args.command == "rollback":
        target = rollback_target(cycle, args.to)
        refusal = schema_refusal(cycle, target)
        if refusal and not args.force:
            raise CycleError(f"refused: {refusal}")
        # Past a schema change only when told: the audit log says so.
        action = "forced-rollback" if refusal else "rollback"
        if args.dry_run:
            print(json.dumps(activate(cycle, target, action, args.by, False, True)))
            return 0
        # A rollback by hand takes the same lock a deploy does.
        acquire_lock(cycle, f"{args.by}@{socket.gethostname()} (rollback)")
        try:
            print(json.dumps(activate(cycle, target, action, args.by, False, False)))
        finally:
            cycle.lock_file.unlink(missing_ok=True)
    elif args.command == "lock":
        # One call does what a deploy needs of the host before it builds: the target (read
        # first: a failure leaves no lock behind), the lock, then what is live under it.
        target = {"target": target_of(args.python)} if args.python else {}
        if not args.dry_run:
            acquire_lock(cycle, args.holder)
        changed = False
        if args.settings:
            try:
                changed = replace_settings(cycle, args.settings, args.dry_run)
            except CycleError:
                if not args.dry_run:  # refused: nothing of the run's is left behind
                    cycle.lock_file.unlink(missing_ok=True)
                raise
        # The run may fail half-way: the record of the last deploy's end goes first.
        if not args.dry_run:
            cycle.settled_file.unlink(missing_ok=True)
        answer = {"locked": not args.dry_run, "settings_changed": changed}
        print(json.dumps(answer | target | live_state(cycle)))
    elif args.command == "settled":
        # Read without the lock: a held lock (a deploy or a rollback under way) is an answer of its own.
        print(json.dumps({"settled": read_lock(cycle) is None and is_settled(cycle, args.fingerprint)}))
    elif args.command == "unlock":
        held = read_lock(cycle)
        if args.settle and not args.dry_run:
            settle(cycle, args.settle)
        if held and not args.dry_run:
            cycle.lock_file.unlink()
        print(
            json.dumps(
                {
                    "was_locked": held is not None,
                    "holder": (held or {}).get("holder"),
                    "since": (held or {}).get("since"),
                    "dry_run": args.dry_run,
                }
            )
        )
    elif args.command == "boot":
        print(boot(cycle))
    elif args.command == "cooldown":
        print(cooldown(cycle, args.slot))
    elif args.command == "stop-gracefully":
        print(stop_gracefully(cycle, args.slot))
    elif args.command == "scale":
        print(scale(cycle, args.workers, args.dry_run))
    elif args.command == "install":
        made = install(
            cycle, args.release, args.archive, args.lock, args.record, args.static_dir, args.python
        )
        print(json.dumps(made))
    elif args.command == "prune":
        removed = prune(cycle, args.keep, args.keep_release, args.dry_run)
        print(json.dumps({"removed": removed, "dry_run": args.dry_run}))
    elif args.command == "exec":
        return exec_as_app(cycle, args.argv[1:] if args.argv[:1] == ["--"] else args.argv, args.by)
    elif args.command == "logs":
        return print_logs(cycle, args.lines, args.follow)
    elif args.command == "slot-logs":
        print(cycle.manager.log_tail_of(list(cycle.slots), args.lines))
    elif args.command == "maintenance":
        print(json.dumps(maintenance(cycle, args.state, args.message, args.by, args.dry_run)))
    elif args.command == "schema":
        print(json.dumps(record_schema(cycle, args.release)))
    elif args.command == "audit":
        audit(
            cycle,
            action=args.action,
            outcome=args.outcome,
            to=args.to,
            by=args.by,
            reason=args.reason,
            **{"from": getattr(args, "from")},
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
