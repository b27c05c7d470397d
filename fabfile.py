"""Day-two commands over SSH (or `podman exec`), on the hosts of an Ansible inventory: `fab --list`.

    fab releases                 fab status
    fab rollback [--to RELEASE] [--force]       fab scale --workers=+2
    fab logs [--follow] [--lines N]             fab unlock
    fab exec [--interactive] -- COMMAND [ARG ...]
    fab maintenance on [--message TEXT] | off | status
    (every task: --inventory, --host; changing ones: --dry)

Each runs gunship-release on the hosts (installed by the release role), so a rollback here is
the same gated switch a playbook makes. Hosts, users, ports and app_name come from the
inventory exactly as Ansible sees them (`ansible-inventory --list`). A host Ansible reaches
through podman (`ansible_connection: containers.podman.podman`, as in inventories/local) is
reached through `podman exec` as root, like Ansible does.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

from fabric import Config, Connection, Executor, task
from invoke import Context
from invoke.exceptions import Exit
from invoke.runners import Result

PROJECT = Path(__file__).resolve().parent
DEFAULT_INVENTORY = os.environ.get("GUNSHIP_INVENTORY", "inventories/prod")
APP_GROUP = os.environ.get("GUNSHIP_APP_GROUP", "app")
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gunship"
# ansible_connection values fab speaks: Fabric's SSH for Ansible's SSH plugins, `podman exec` for
# podman's (ansible_host, else the inventory name, is the container).
SSH_CONNECTIONS = {
    "ssh",
    "smart",
    "paramiko",
    "paramiko_ssh",
    "ansible.builtin.ssh",
    "ansible.builtin.paramiko_ssh",
}
PODMAN_CONNECTIONS = {"podman", "containers.podman.podman"}


@dataclass(frozen=True)
class Target:
    name: str
    address: str
    user: str | None
    port: int | None
    key: str | None
    app: str
    become_password: str | dict | None = None  # a dict: still vault-encrypted
    connection: str = "ssh"  # or "podman"
    podman: str = "podman"  # the podman executable, for the podman connection
    ssh_args: str = ""  # ansible_ssh_common_args and ansible_ssh_extra_args, for `ssh -t`


def inventory_targets(inventory: dict, group: str = APP_GROUP) -> list[Target]:
    """The hosts of `group` in `ansible-inventory --list` output, with their connection vars."""
    hostvars = inventory.get("_meta", {}).get("hostvars", {})

    def members(name: str, seen: set[str]) -> list[str]:
        if name in seen:
            return []
        seen.add(name)
        entry = inventory.get(name, {})
        hosts = list(entry.get("hosts", []))
        for child in entry.get("children", []):
            hosts += members(child, seen)
        return hosts

    targets = []
    for host in dict.fromkeys(members(group, set())):
        hv = hostvars.get(host, {})
        app = hv.get("app_name")
        if not app:
            raise Exit(f"{host}: app_name is not set in the inventory; fab needs it to know the app")
        port = hv.get("ansible_port") or hv.get("ansible_ssh_port")
        connection = hv.get("ansible_connection", "ssh")
        if connection not in SSH_CONNECTIONS | PODMAN_CONNECTIONS:
            raise Exit(
                f"{host} uses the {connection} connection: fab reaches hosts over SSH, or through"
                " `podman exec` for the podman connection. Use ansible-playbook for this host."
            )
        podman = connection in PODMAN_CONNECTIONS
        targets.append(
            Target(
                name=host,
                address=hv.get("ansible_host", host),
                user=hv.get("ansible_user") or hv.get("ansible_ssh_user"),
                port=int(port) if port else None,
                key=hv.get("ansible_ssh_private_key_file") or hv.get("ansible_private_key_file"),
                app=app,
                become_password=hv.get("ansible_become_password") or hv.get("ansible_become_pass"),
                connection="podman" if podman else "ssh",
                podman=hv.get("ansible_podman_executable", "podman"),
                ssh_args=" ".join(
                    filter(None, (hv.get("ansible_ssh_common_args"), hv.get("ansible_ssh_extra_args")))
                ),
            )
        )
    if not targets:
        raise Exit(f"no hosts in group {group!r} of the inventory")
    return targets


def inventory_files(path: Path) -> list[Path] | None:
    """The files a static inventory is made of; None when its hosts come from elsewhere.

    A script or an inventory plugin (a YAML file naming `plugin:`) asks a cloud or a CMDB for
    its hosts at run time, so its output cannot be cached from the files alone."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if os.access(file, os.X_OK):
            return None
        yaml = file.suffix in (".yml", ".yaml") and file.parent.name not in ("group_vars", "host_vars")
        if yaml and any(line.startswith("plugin:") for line in file.read_text(errors="replace").splitlines()):
            return None
    return files


def cache_key(path: Path, files: list[Path]) -> str:
    """Changes whenever a file of the inventory, ansible.cfg or Ansible's environment does."""
    digest = hashlib.sha256(str(path).encode())
    for file in [*files, PROJECT / "ansible.cfg"]:
        stat = file.stat() if file.exists() else None
        digest.update(f"{file}\0{stat and stat.st_mtime_ns}\0{stat and stat.st_size}\n".encode())
    for name, value in sorted(os.environ.items()):
        if name.startswith("ANSIBLE_") or name.startswith("GUNSHIP_"):
            digest.update(f"{name}={value}\n".encode())
    return digest.hexdigest()[:32]


def read_targets(path: Path) -> list[Target]:
    result = subprocess.run(
        [str(Path(sys.executable).with_name("ansible-inventory")), "-i", str(path), "--list"],
        capture_output=True,
        text=True,
        check=False,
        cwd=PROJECT,
    )
    if result.returncode != 0:
        raise Exit(f"ansible-inventory -i {path} failed:\n{result.stderr.strip()}")
    return inventory_targets(json.loads(result.stdout))


def cached_targets(path: Path) -> list[Target]:
    """inventory_targets() of `ansible-inventory --list`, from a cache while nothing changed.

    Running ansible-inventory is about a third of a second: most of a warm `fab rollback`.
    Only static inventories are cached, and never a become password (the cache is on disk)."""
    files = inventory_files(path) if path.exists() else None
    if files is None or os.environ.get("GUNSHIP_FAB_CACHE", "1") == "0":
        return read_targets(path)
    cache = CACHE_DIR / f"inventory-v3-{cache_key(path, files)}.json"  # v3: with ssh_args
    try:
        return [Target(**row) for row in json.loads(cache.read_text())]
    except (OSError, ValueError, TypeError):
        pass
    targets = read_targets(path)
    if not any(t.become_password for t in targets):
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        scratch = cache.with_suffix(f".{os.getpid()}")
        scratch.write_text(json.dumps([asdict(t) for t in targets]))
        scratch.replace(cache)
    return targets


def load_targets(inventory: str, host: str | None) -> list[Target]:
    targets = cached_targets(Path(inventory) if os.path.isabs(inventory) else PROJECT / inventory)
    if host:
        targets = [t for t in targets if host in (t.name, t.address)]
        if not targets:
            raise Exit(f"--host {host!r} is not in group {APP_GROUP!r} of {inventory}")
    return targets


def reveal(value: str | dict | None, name: str, host: str) -> str | None:
    """`value` as plain text: a vault-encrypted one (ansible-inventory leaves it encrypted) is
    decrypted by ansible-vault, with the vault password Ansible would use (ANSIBLE_VAULT_PASSWORD_FILE,
    ansible.cfg's vault_password_file, or a prompt)."""
    if not isinstance(value, dict) or "__ansible_vault" not in value:
        return value
    with tempfile.NamedTemporaryFile("w", prefix="gunship-", suffix=".vault") as sealed:
        sealed.write(value["__ansible_vault"])
        sealed.flush()
        run = subprocess.run(
            [str(Path(sys.executable).with_name("ansible-vault")), "decrypt", "--output", "-", sealed.name],
            stdin=None if sys.stdin.isatty() else subprocess.DEVNULL,  # a prompt only at a terminal
            capture_output=True,
            text=True,
            check=False,
            cwd=PROJECT,
        )
    if run.returncode != 0:
        why = run.stderr.strip().splitlines()[-1] if run.stderr.strip() else f"exit {run.returncode}"
        raise Exit(
            f"{host}: {name} is vault-encrypted and could not be decrypted ({why}). "
            "Set ANSIBLE_VAULT_PASSWORD_FILE to the vault password file"
            " (or vault_password_file in ansible.cfg)."
        )
    return run.stdout


def connect(target: Target) -> Connection:
    connect_kwargs = {"key_filename": os.path.expanduser(target.key)} if target.key else {}
    password = reveal(target.become_password, "ansible_become_password", target.name)
    config = Config(overrides={"sudo": {"password": password}}) if password else None
    return Connection(
        target.address, user=target.user, port=target.port, connect_kwargs=connect_kwargs, config=config
    )


def as_root(conn: Connection, command: str, **kwargs: object) -> Result:
    """Run `command` as root: directly when we log in as root, else through sudo."""
    runner = conn.run if conn.user == "root" else conn.sudo
    return runner(command, **kwargs)


def run_as_root(target: Target, argv: list[str]) -> tuple[int, str, str]:
    """Run `argv` on the host as root (over SSH through sudo unless we log in as root, or through
    `podman exec`): (exit status, stdout, stderr)."""
    if target.connection == "podman":
        # podman exec runs as the container's root, as Ansible's podman connection does.
        try:
            run = subprocess.run(
                [target.podman, "exec", target.address, *argv], capture_output=True, text=True, check=False
            )
        except FileNotFoundError:
            raise Exit(f"{target.name} uses the podman connection, but {target.podman} is missing") from None
        return run.returncode, run.stdout, run.stderr
    with connect(target) as conn:
        result = as_root(conn, shlex.join(argv), hide=True, warn=True)
    return result.exited, result.stdout, result.stderr


def on_hosts(inventory: str, host: str | None, *args: str) -> list[tuple[Target, str]]:
    """Run `gunship-release APP ARGS` on each host, as root (see run_as_root)."""
    outputs = []
    for target in load_targets(inventory, host):
        exited, stdout, stderr = run_as_root(target, ["gunship-release", target.app, *args])
        if exited != 0:
            raise Exit(f"{target.name}: {stderr.strip() or stdout.strip()}", code=exited or 1)
        outputs.append((target, stdout.strip()))
    return outputs


INVENTORY_HELP = {"inventory": f"Ansible inventory (default {DEFAULT_INVENTORY})", "host": "only this host"}


@task(
    help={
        **INVENTORY_HELP,
        "to": "release id to roll back to (default: the previous one)",
        "force": "even to a release that recorded another database schema state",
        "dry": "say what would happen, change nothing",
    }
)
def rollback(
    c: Context,
    to: str | None = None,
    inventory: str = DEFAULT_INVENTORY,
    host: str | None = None,
    force: bool = False,
    dry: bool = False,
) -> None:
    """Roll back to the previous release (or --to), gated and switched like a deploy.

    Refused across a change of the database schema (app_schema_command) unless --force."""
    args = (
        ["rollback", f"--by={getpass.getuser()}"]
        + ([f"--to={to}"] if to else [])
        + (["--force"] if force else [])
        + (["--dry-run"] if dry else [])
    )
    for target, out in on_hosts(inventory, host, *args):
        print(f"{target.name}: {json.loads(out)['message']}")


@task(help=INVENTORY_HELP)
def releases(c: Context, inventory: str = DEFAULT_INVENTORY, host: str | None = None) -> None:
    """List each host's releases: id, version, deployed at, by whom, live and warm, schema state."""
    for target, out in on_hosts(inventory, host, "releases", "--json"):
        print(f"{target.name} ({target.app})")
        rows = json.loads(out)
        schemas = any(row.get("schema") for row in rows)
        print(
            f"  {'release':<18} {'version':<10} {'deployed at':<22} {'by':<12} {'state':<6}"
            + (" schema" if schemas else "")
        )
        for row in rows:
            state = " ".join(m for m in ("live", "warm") if row[m])
            cells = (row["id"], row["version"], row["deployed_at"], row["deployed_by"], state)
            line = "  {:<18} {!s:<10} {!s:<22} {!s:<12} {:<6}".format(*cells)
            print((line + f" {row.get('schema') or '-'}") if schemas else line.rstrip())


@task(help=INVENTORY_HELP)
def status(c: Context, inventory: str = DEFAULT_INVENTORY, host: str | None = None) -> None:
    """Show each host's live release, slot, workers, health and uptime."""
    for target, out in on_hosts(inventory, host, "status", "--json"):
        s = json.loads(out)
        print(
            f"{target.name} ({target.app}): release {s.get('release')} ({s.get('version')}) in slot "
            f"{s.get('live_slot')}, {s.get('workers')} workers, "
            f"{'healthy' if s.get('healthy') else 'NOT HEALTHY'}, up since {s.get('active_since')}"
            + (f"; {s['warm_slot']} is warm with {s['warm_release']}" if s.get("warm_slot") else "")
        )


@task(help={**INVENTORY_HELP, "workers": "+N or -N workers", "dry": "say what would happen, change nothing"})
def scale(
    c: Context, workers: str, inventory: str = DEFAULT_INVENTORY, host: str | None = None, dry: bool = False
) -> None:
    """Add or remove workers on the live master (Gunicorn: TTIN/TTOU; uWSGI: its master FIFO);
    lasts until the next restart."""
    for target, out in on_hosts(inventory, host, "scale", workers, *(["--dry-run"] if dry else [])):
        print(f"{target.name}: {out}")


@task(help={**INVENTORY_HELP, "dry": "show the lock, leave it"})
def unlock(
    c: Context, inventory: str = DEFAULT_INVENTORY, host: str | None = None, dry: bool = False
) -> None:
    """Clear a stale deploy lock, saying who held it."""
    for target, out in on_hosts(inventory, host, "unlock", *(["--dry-run"] if dry else [])):
        lock = json.loads(out)
        if not lock["was_locked"]:
            print(f"{target.name}: not locked")
        else:
            verb = "is locked" if dry else "was locked"
            print(f"{target.name}: {verb} by {lock['holder']} since {lock['since']}")


class Prefixed:
    """A stream that writes each line as `prefix line`, whole lines at a time (output arrives
    in chunks that may split lines)."""

    def __init__(self, prefix: str, out: TextIO, lock: threading.Lock) -> None:
        self.prefix, self.out, self.lock, self.partial = prefix, out, lock, ""

    def write(self, text: str) -> int:
        *lines, self.partial = (self.partial + text.replace("\r\n", "\n")).split("\n")
        if lines:
            with self.lock:
                self.out.write("".join(f"{self.prefix}{line}\n" for line in lines))
                self.out.flush()
        return len(text)

    def flush(self) -> None:
        """Writers flush after each chunk: a partial line waits for its end (see finish)."""

    def finish(self) -> None:
        """The last line, if the output did not end with a newline."""
        if self.partial:
            self.write("\n")


def stream(target: Target, argv: list[str], out: TextIO, *, terminal: bool = False) -> int:
    """Run `argv` as root on the host, its output written to `out` as it comes. `terminal`: on a
    terminal of its own, with our input and our terminal (see on_a_terminal). Returns its exit
    status."""
    if terminal and sys.stdin.isatty():
        return on_a_terminal(target, argv)
    if target.connection == "podman":
        command = [target.podman, "exec", *(["-i"] if terminal else []), target.address, *argv]
        try:
            with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as child:
                assert child.stdout is not None
                while chunk := child.stdout.read1(65536):
                    out.write(chunk.decode(errors="replace"))
            return child.returncode
        except FileNotFoundError:
            raise Exit(f"{target.name} uses the podman connection, but {target.podman} is missing") from None
    with connect(target) as conn:
        result = as_root(conn, shlex.join(argv), warn=True, out_stream=out, err_stream=out)
    return result.exited


def on_a_terminal(target: Target, argv: list[str]) -> int:
    """`argv` as root on the host, on a terminal of its own wired to ours: the system's `ssh -t`
    (with the inventory's ansible_ssh_common_args and _extra_args; sudo asks for its password
    there if it needs one), or `podman exec -it`. The terminal is the user's, as with plain ssh."""
    if target.connection == "podman":
        command = [target.podman, "exec", "-it", target.address, *argv]
    else:
        remote = argv if target.user == "root" else ["sudo", *argv]
        command = [
            "ssh", "-t",
            *(["-p", str(target.port)] if target.port else []),
            *(["-i", os.path.expanduser(target.key)] if target.key else []),
            *shlex.split(target.ssh_args),
            f"{target.user}@{target.address}" if target.user else target.address,
            shlex.join(remote),
        ]  # fmt: skip
    try:
        return subprocess.run(command, check=False).returncode
    except FileNotFoundError:
        raise Exit(f"{target.name}: fab exec --interactive needs {command[0]} on this machine") from None


def host_argv(target: Target, *args: str) -> list[str]:
    return ["gunship-release", target.app, *args]


@task(
    help={
        **INVENTORY_HELP,
        "follow": "keep printing new lines until interrupted (Ctrl-C)",
        "lines": "how many of the latest lines of each log (default 50)",
    }
)
def logs(
    c: Context,
    follow: bool = False,
    lines: int = 50,
    inventory: str = DEFAULT_INVENTORY,
    host: str | None = None,
) -> None:
    """Print the app's log and its Nginx access and error logs, each line prefixed with its host.

    The app's log is the live slot's journal (or supervisor log); --follow follows both slots, so
    a switch during it is seen. From every app host, or --host."""
    targets = load_targets(inventory, host)
    width = max(len(t.name) for t in targets)
    lock = threading.Lock()
    args = ["logs", f"--lines={lines}", *(["--follow"] if follow else [])]

    def one(target: Target) -> None:
        out = Prefixed(f"{target.name:<{width}}  ", sys.stdout, lock)
        stream(target, host_argv(target, *args), out)
        out.finish()

    if not follow:
        for target in targets:
            one(target)
        return
    followers = [threading.Thread(target=one, args=(t,), daemon=True) for t in targets]
    for thread in followers:
        thread.start()
    try:
        for thread in followers:
            thread.join()
    except KeyboardInterrupt:
        pass


def command_after_dashes(argv: list[str]) -> list[str]:
    """What follows the first `--` of fab's own command line: the command, quoting intact."""
    return argv[argv.index("--") + 1 :] if "--" in argv else []


@task(
    name="exec",
    help={
        **INVENTORY_HELP,
        "interactive": "give the command a terminal (for prompts, shells, consoles)",
    },
)
def exec_(
    c: Context, interactive: bool = False, inventory: str = DEFAULT_INVENTORY, host: str | None = None
) -> None:
    """Run -- COMMAND [ARG ...] in the live release, as the app user, with the app's environment.

    Its venv first on PATH, in the release directory; the environment's values are never printed.
    On --host, or on each app host in turn. Who ran what goes into the host's audit log."""
    command = command_after_dashes(sys.argv)
    if not command:
        raise Exit("fab exec needs a command after --, e.g. fab exec -- flask routes")
    targets = load_targets(inventory, host)
    for target in targets:
        if len(targets) > 1:
            print(f"== {target.name}", flush=True)
        argv = host_argv(target, "exec", f"--by={getpass.getuser()}", "--", *command)
        exited = stream(target, argv, sys.stdout, terminal=interactive)
        if exited != 0:
            raise Exit(f"{target.name}: {shlex.join(command)} exited with {exited}", code=exited)


@task(
    help={
        **INVENTORY_HELP,
        "state": "on, off or status",
        "message": "the text of the page while it is on",
        "dry": "say what would happen, change nothing",
    }
)
def maintenance(
    c: Context,
    state: str,
    message: str | None = None,
    inventory: str = DEFAULT_INVENTORY,
    host: str | None = None,
    dry: bool = False,
) -> None:
    """Turn the maintenance page on or off, or show its status.

    On: Nginx answers every app request with the page (503, Retry-After), health checks and static
    files excepted, until off, across deploys and reloads."""
    if state not in ("on", "off", "status"):
        raise Exit(f"fab maintenance: state is {state!r}; choose on, off or status")
    args = ["maintenance", state, f"--by={getpass.getuser()}"]
    args += ([f"--message={message}"] if message and state == "on" else []) + (["--dry-run"] if dry else [])
    for target, out in on_hosts(inventory, host, *args):
        report = json.loads(out)
        if not report["maintenance"]:
            print(f"{target.name}: maintenance is off" + (" (was on)" if report["changed"] else ""))
        else:
            since, by, text = report.get("since"), report.get("by"), report.get("message")
            print(f"{target.name}: maintenance is on since {since} by {by}: {text}")


class GunshipExecutor(Executor):
    """Fabric's executor, except that text after `--` belongs to `fab exec`: Fabric would run it
    as a shell command of its own on -H hosts. fabric.yaml (the project's Fabric settings, beside
    this file) names it as tasks.executor_class."""

    def expand_calls(self, calls, apply_hosts=True):  # noqa: ANN001, ANN201 - Fabric's signature
        self.core.remainder = ""
        return super().expand_calls(calls, apply_hosts)
