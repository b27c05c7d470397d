#!/usr/bin/env python3
"""Benchmark the release cycle on a deployed sandbox host, side by side in one run.

    bench/release_cycle.py --sandbox            (what `make bench-release` runs)
    bench/release_cycle.py --inventory INV --url http://127.0.0.1:PORT [--host-header localhost]
                           [--rounds 5] [--out bench/results/release_cycle.json]

--sandbox uses the release scenario's container (SSH on 127.0.0.1:18022, Nginx on 18091),
creating it with Molecule when it is not there, and deploys two releases when it has fewer.

Measures, on a host where the app has at least two releases:
- `fab rollback` wall time, command to the old version answering, with the old slot warm and
  with it cold (warm_seconds elapsed: simulated by stopping the idle slot first);
- each switch's phases as gunship-release records them in the audit log;
- a bounded load loop's failures and p50/p99 latency while switches happen, against the same
  loop in steady state just before (the ratio is the figure that matters on a shared machine).
Not a test: it asserts nothing; it prints and writes what it measured.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

PROJECT = Path(__file__).resolve().parents[1]
# fabfile and the Molecule scenarios' kit, imported once their directories are on the path.
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(PROJECT / "molecule" / "shared"))
from gunship_testkit import playbook, ssh_inventory, versioned_source  # noqa: E402  (path set above)

import fabfile  # noqa: E402  (path set above)

FAB = str(Path(sys.executable).with_name("fab"))
SANDBOX = "gunship-release-trixie"  # molecule/release
WORK = PROJECT / "bench" / ".work"


def get(url: str, host: str) -> tuple[int, float, str]:
    parts = urlsplit(url)
    started = time.perf_counter()
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("GET", "/version", headers={"Host": host})
        response = conn.getresponse()
        body = response.read().decode()
        return response.status, time.perf_counter() - started, body
    finally:
        conn.close()


class Load:
    def __init__(self, url: str, host: str, threads: int = 4) -> None:
        self.url, self.host = url, host
        self.latencies: list[float] = []
        self.failures = 0
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run) for _ in range(threads)]

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                status, seconds, _ = get(self.url, self.host)
                if status == 200:
                    self.latencies.append(seconds)
                else:
                    self.failures += 1
            except OSError:
                self.failures += 1

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def summary(self) -> dict[str, float]:
        lat = sorted(self.latencies)
        return {
            "requests": len(lat) + self.failures,
            "failures": self.failures,
            "p50_ms": 1000 * lat[len(lat) // 2],
            "p99_ms": 1000 * lat[int(len(lat) * 0.99)],
        }


def fab(*args: str) -> str:
    return subprocess.run([FAB, *args], capture_output=True, text=True, check=True).stdout


def served_release(url: str, host: str) -> str:
    return json.loads(get(url, host)[2])["release"]


def timed_rollback(inventory: str, url: str, host: str, to: str, cold: bool) -> float:
    """`fab rollback --to` wall time, from the command to `to` answering through Nginx."""
    status = json.loads(fab_status_json(inventory))
    if cold and status.get("warm_slot"):
        ssh_run(inventory, f"systemctl stop gunicorn-{status['app']}@{status['warm_slot']}.service")
    started = time.perf_counter()
    fab("rollback", "--inventory", inventory, "--to", to)
    while served_release(url, host) != to:
        time.sleep(0.01)
    return time.perf_counter() - started


def fab_status_json(inventory: str) -> str:
    return ssh_run(inventory, "gunship-release {app} status --json")


def ssh_run(inventory: str, command: str) -> str:
    target = fabfile.load_targets(inventory, None)[0]
    with fabfile.connect(target) as conn:
        return fabfile.as_root(conn, command.format(app=target.app), hide=True).stdout


def sandbox() -> str:
    """The release scenario's container, reachable over SSH with a key of the bench's own,
    with at least two releases deployed. Returns the inventory directory."""
    env = {**os.environ, "ANSIBLE_HOME": str(PROJECT / ".ansible")}
    exists = subprocess.run(["podman", "container", "exists", SANDBOX], check=False).returncode == 0
    if not exists:
        # destroy first: Molecule may still think a container it made earlier is there.
        for step in ("destroy", "create", "prepare"):
            subprocess.run(
                [str(Path(sys.executable).with_name("molecule")), step, "-s", "release"],
                cwd=PROJECT,
                env=env,
                check=True,
            )
    key = deploy_key(WORK)
    subprocess.run(
        [
            "podman",
            "exec",
            "-i",
            SANDBOX,
            "sh",
            "-c",
            # Once: a second run finds the key there and adds nothing.
            'install -d -o deploy -g deploy -m 0700 ~deploy/.ssh && key="$(cat)"'
            ' && keys=~deploy/.ssh/authorized_keys && touch "$keys" && chown deploy: "$keys"'
            ' && { grep -qxF "$key" "$keys" || echo "$key" >> "$keys"; }',
        ],
        input=key.with_suffix(".pub").read_text(),
        text=True,
        check=True,
    )
    # The container may be new, with a new host key: forget the one seen before.
    (WORK / "sandbox" / "known_hosts").unlink(missing_ok=True)
    inventory = str(ssh_inventory(WORK / "sandbox", "sandbox", 18022, key))
    have = subprocess.run(
        ["podman", "exec", SANDBOX, "sh", "-c", "ls /srv/gunship-example/releases 2>/dev/null"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    for version in ("1.0.0", "2.0.0")[len(have) :]:
        source = WORK / "sandbox" / "src" / version
        shutil.rmtree(source, ignore_errors=True)
        source.mkdir(parents=True)
        run = playbook(
            "deploy.yml", inventory, "-e", json.dumps({"app_source": str(versioned_source(source, version))})
        )
        if run.returncode != 0:
            sys.exit(run.stdout + run.stderr)
    return inventory


# Run as root in a fresh container, the deploy key's public half on stdin: an SSH server and a
# deploy user with sudo, as a real host has.
SSH_SETUP = (
    "apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q"
    " openssh-server >/dev/null && systemctl enable --now ssh"
    " && useradd --create-home --shell /bin/bash deploy"
    " && echo 'deploy ALL=(ALL) NOPASSWD: ALL' >/etc/sudoers.d/deploy && chmod 0440 /etc/sudoers.d/deploy"
    " && install -d -o deploy -g deploy -m 0700 ~deploy/.ssh"
    " && install -o deploy -g deploy -m 0600 /dev/stdin ~deploy/.ssh/authorized_keys"
)


def wait_for_systemd(container: str) -> None:
    """Wait until a freshly started container's systemd has booted (or give up after 60 s)."""
    for _ in range(60):
        state = subprocess.run(
            ["podman", "exec", container, "systemctl", "is-system-running"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        if state in ("running", "degraded"):
            return
        time.sleep(1)
    sys.exit(f"{container}: systemd did not come up")


def timed_deploy(
    run: Callable[[], subprocess.CompletedProcess[str]], what: str = "deploy"
) -> tuple[float, str]:
    """Wall time of one playbook run, and its recap's changed= counts; a failed run ends the
    benchmark with its output."""
    started = time.perf_counter()
    done = run()
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{what} failed:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}")
    return seconds, ",".join(re.findall(r"changed=(\d+)", done.stdout))


def ready_host(container: str, key: Path) -> None:
    """Wait for a freshly started container's systemd, then give it an SSH server and a deploy
    user who logs in with `key` (never part of a timing)."""
    wait_for_systemd(container)
    run = subprocess.run(
        ["podman", "exec", "-i", container, "sh", "-c", SSH_SETUP],
        input=key.with_suffix(".pub").read_text(),
        capture_output=True,
        text=True,
        check=False,
    )
    if run.returncode != 0:
        sys.exit(f"{container}: could not set up SSH:\n{run.stdout}{run.stderr}")


def deploy_key(work: Path) -> Path:
    """The bench's own SSH key for the deploy user, in `work` (made on first use)."""
    key = work / "id_ed25519"
    if not key.exists():
        work.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


def machine() -> dict[str, object]:
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "load_average_at_start": os.getloadavg(),
    }


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sandbox", action="store_true", help="use (or create) the release scenario's container"
    )
    parser.add_argument("--inventory")
    parser.add_argument("--url", default="http://127.0.0.1:18091")
    parser.add_argument("--host-header", default="localhost")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default="bench/results/release_cycle.json")
    args = parser.parse_args()
    if args.sandbox:
        args.inventory = sandbox()
    elif not args.inventory:
        parser.error("give --inventory (and --url), or --sandbox")
    started_with = machine()

    with Load(args.url, args.host_header) as steady:
        time.sleep(10)
    ids = [row["id"] for row in json.loads(ssh_run(args.inventory, "gunship-release {app} releases --json"))]
    if len(ids) < 2:
        parser.error("the host needs at least two releases")
    live = json.loads(fab_status_json(args.inventory))["release"]
    other = next(rid for rid in reversed(ids) if rid != live)
    pair = [other, live]  # the first switch goes away from the live release

    def rounds() -> tuple[list[float], list[float]]:
        warm, cold = [], []
        for _ in range(args.rounds):
            # Away to the other release with its slot stopped first (cold), then straight back to
            # the slot just left, still running (warm).
            to_cold, to_warm = pair
            cold.append(timed_rollback(args.inventory, args.url, args.host_header, to_cold, cold=True))
            warm.append(timed_rollback(args.inventory, args.url, args.host_header, to_warm, cold=False))
        return warm, cold

    # The rollback's own time on an otherwise idle stack, then again under the load loop (which
    # keeps both cores busy): the first is what the target is about, the second what the load
    # loop's latency is compared with.
    warm, cold = rounds()
    with Load(args.url, args.host_header) as switching:
        warm_loaded, cold_loaded = rounds()
    log = ssh_run(args.inventory, f"tail -n {4 * args.rounds} /srv/{{app}}/audit.log")
    audit = [json.loads(line) for line in log.splitlines()]
    phases: dict[str, dict[str, list[float]]] = {"warm": {}, "cold": {}}
    for entry in audit:
        for name, seconds in (entry.get("phases") or {}).items():
            phases["warm" if entry.get("warm") else "cold"].setdefault(name, []).append(seconds)
    result = {
        "command": " ".join(["bench/release_cycle.py", *sys.argv[1:]]),
        "machine": started_with,
        "rounds": args.rounds,
        "fab_rollback_warm_s": spread(warm),
        "fab_rollback_cold_s": spread(cold),
        "fab_rollback_warm_under_load_s": spread(warm_loaded),
        "fab_rollback_cold_under_load_s": spread(cold_loaded),
        "switch_phases_median_s": {
            kind: {name: statistics.median(values) for name, values in by_name.items()}
            for kind, by_name in phases.items()
        },
        "load_steady": steady.summary(),
        "load_during_switches": switching.summary(),
    }
    result["p99_ratio_switching_to_steady"] = (
        result["load_during_switches"]["p99_ms"] / result["load_steady"]["p99_ms"]
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
