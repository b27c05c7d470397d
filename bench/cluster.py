#!/usr/bin/env python3
"""Deploy time against the number of app hosts: 1, 2, 4 and 8 behind one load balancer.

    bench/cluster.py [--hosts 1 2 4 8] [--rounds 1] [--out bench/results/cluster.json]

For each count, a fresh cluster of Debian 13 containers with systemd and an SSH server on one
podman network (`gunship-bench-cluster`: a load balancer and the app hosts), reached over SSH
from the host as a user's inventory reaches real hosts. Timed with the real playbook, in this
order, `rounds` times over:

    first          the first deploy onto the fresh cluster (rolling, one app host at a time)
    noop           the same release again, three times: nothing changes (every host is
                   settled: the run skips their staging and switch)
    rolling        a new release, one app host at a time (the default with load balancers),
                   under a load loop through the load balancer (its failed requests are kept)
    all_at_once    a new release on every app host at once (-e gunship_serial=100%)

Each is the wall time of `ansible-playbook playbooks/deploy.yml`, the load balancer's play
included. The release is staged on every app host at once and only the switch runs in
batches, so `rolling` is about `all_at_once` plus one switch per further host: the per-host
switch time is (rolling - all_at_once) / (hosts - 1). Not a test: it asserts nothing; it
writes what it measured, with the ratios to one host.

Beside each wall time, where the CPU went: the control node's CPU seconds (ansible-playbook, its
forks and their ssh clients), the app hosts' own (their containers' cgroups: sshd, modules, pip,
the app servers), and how busy the whole machine's cores were during the run (from /proc/stat).
A run whose cores were busy nearly all the time was bound by this machine's CPU, not by the
playbook's round trips. Its floor, the machine's busy CPU seconds over its cores, is the least
wall time any schedule of the same work could take here; on real hosts, each app host's share
runs on its own CPUs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "molecule" / "shared"))
from gunship_testkit import LoadLoop, cluster_inventory, playbook, versioned_source  # noqa: E402  (path set above)
from release_cycle import deploy_key, machine, ready_host, spread, timed_deploy  # noqa: E402  (beside this file)

IMAGE = "localhost/gunship-debian:trixie"
NETWORK = "gunship-bench-cluster"
PREFIX = "gunship-bench-cluster"
WORK = PROJECT / "bench" / ".work" / "cluster"
SSH_PORT_BASE = 18140  # the load balancer's SSH on 18140, app host N's on 18140 + N
LB_HTTP_PORT = 18150


def podman(*args: str, check: bool = True) -> str:
    run = subprocess.run(["podman", *args], capture_output=True, text=True, check=False)
    if check and run.returncode != 0:
        sys.exit(f"podman {' '.join(args)} failed:\n{run.stderr}")
    return run.stdout.strip()


def names(count: int) -> tuple[str, list[str]]:
    return f"{PREFIX}-lb", [f"{PREFIX}-app{n}" for n in range(1, count + 1)]


def remove_all() -> None:
    stale = podman("ps", "-a", "--format", "{{.Names}}", "--filter", f"name=^{PREFIX}-").split()
    if stale:
        podman("rm", "-f", *stale, check=False)


def start(name: str, ssh_port: int, publish_http: bool, privileged: bool) -> None:
    """One host, started and ready: systemd booted, an SSH server, a deploy user with sudo."""
    publish = ["--publish", f"127.0.0.1:{ssh_port}:22"]
    if publish_http:
        publish += ["--publish", f"127.0.0.1:{LB_HTTP_PORT}:80"]
    podman(
        "run", "-d", "--name", name, "--hostname", name, "--network", NETWORK, "--systemd=always",
        *(["--privileged"] if privileged else []), *publish, IMAGE, "/lib/systemd/systemd",
    )  # fmt: skip
    ready_host(name, deploy_key(WORK))


def fresh_cluster(count: int) -> str:
    """A load balancer and `count` app hosts, and an inventory for them."""
    remove_all()
    if subprocess.run(["podman", "network", "exists", NETWORK], check=False).returncode != 0:
        podman("network", "create", NETWORK)
    lb, apps = names(count)
    with ThreadPoolExecutor() as pool:
        jobs = [pool.submit(start, lb, SSH_PORT_BASE, True, False)]
        jobs += [pool.submit(start, app, SSH_PORT_BASE + n, False, True) for n, app in enumerate(apps, 1)]
        for job in jobs:
            job.result()
    (WORK / "known_hosts").unlink(missing_ok=True)  # new containers, new host keys
    inventory = cluster_inventory(
        WORK,
        {app: SSH_PORT_BASE + n for n, app in enumerate(apps, 1)},
        {lb: SSH_PORT_BASE},
        deploy_key(WORK),
        # The containers reach each other by name on the podman network.
        backend_addresses={app: app for app in apps},
    )
    return str(inventory)


def cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all the machine's cores since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    return sum(fields) - idle, sum(fields)


def container_cpu_s(name: str) -> float:
    """CPU seconds a container has used since it started, from its cgroup (v1 or v2)."""
    path = podman("inspect", "--format", "{{.State.CgroupPath}}", name)
    v1 = Path(f"/sys/fs/cgroup/cpuacct{path}/cpuacct.usage")
    if v1.exists():
        return int(v1.read_text()) / 1e9
    stat = dict(line.split() for line in Path(f"/sys/fs/cgroup{path}/cpu.stat").read_text().splitlines())
    return int(stat["usage_usec"]) / 1e6


def deploy(
    inventory: str, source: Path, app_hosts: list[str], *args: str
) -> tuple[float, str, dict[str, float]]:
    """Wall time and recap of one deploy, and its CPU: the control node's seconds (this
    process's children), the app hosts' (their containers), the machine's busy seconds and the
    share of its cores that were busy."""
    extra = json.dumps({"app_source": str(source)})
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    hosts_before = sum(map(container_cpu_s, app_hosts))
    busy_before, total_before = cpu_jiffies()
    run = lambda: playbook("deploy.yml", inventory, "-e", extra, *args, timeout=3600)  # noqa: E731
    seconds, changed = timed_deploy(run)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy_after, total_after = cpu_jiffies()
    hosts = sum(map(container_cpu_s, app_hosts)) - hosts_before
    control = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    busy = (busy_after - busy_before) / max(1, total_after - total_before)
    used = {
        "control_cpu_s": round(control, 1),
        "app_hosts_cpu_s": round(hosts, 1),
        "machine_cpu_s": round((busy_after - busy_before) / os.sysconf("SC_CLK_TCK"), 1),
        "cores_busy": round(busy, 2),
    }
    return seconds, changed, used


def median_cpu(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: sorted(run[key] for run in runs)[len(runs) // 2] for key in runs[0]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--out", default="bench/results/cluster.json")
    args = parser.parse_args()
    started_with = machine()
    WORK.mkdir(parents=True, exist_ok=True)
    sources = WORK / "src"
    shutil.rmtree(sources, ignore_errors=True)
    sources.mkdir()
    v1, v2, v3 = (versioned_source(sources, version) for version in ("1.0.0", "2.0.0", "3.0.0"))

    steps = ("first", "noop", "rolling", "all_at_once")
    results: dict[str, dict] = {}
    try:
        for count in args.hosts:
            times: dict[str, list[float]] = {step: [] for step in steps}
            cpu: dict[str, list[dict[str, float]]] = {step: [] for step in steps}
            changed: dict[str, str] = {}
            load_seen = {"requests": 0, "failed": 0}
            for round_no in range(args.rounds):
                inventory = fresh_cluster(count)
                app_hosts = names(count)[1]
                for step, source, extra in (
                    ("first", v1, ()),
                    # Short and noisy: three times a round, the median counts.
                    *[("noop", v1, ())] * 3,
                    ("rolling", v2, ()),
                    ("all_at_once", v3, ("-e", "gunship_serial=100%")),
                ):
                    if step == "rolling":
                        with LoadLoop([LB_HTTP_PORT], threads_per_port=4) as load:
                            seconds, changed[step], used = deploy(inventory, source, app_hosts, *extra)
                        load_seen["requests"] += load.requests
                        load_seen["failed"] += len(load.failures)
                        print(
                            f"  under load: {load.requests} requests, {len(load.failures)} failed", flush=True
                        )
                    else:
                        seconds, changed[step], used = deploy(inventory, source, app_hosts, *extra)
                    times[step].append(seconds)
                    cpu[step].append(used)
                    print(
                        f"{count} app host(s), round {round_no + 1}: {step} {seconds:.1f} s,"
                        f" control node {used['control_cpu_s']} CPU s, cores {used['cores_busy']:.0%} busy",
                        flush=True,
                    )
            results[str(count)] = {step: spread(times[step]) for step in steps} | {
                "cpu": {step: median_cpu(cpu[step]) for step in steps},
                "changed": changed,
                "rolling_load": load_seen,
            }
    finally:
        remove_all()

    one = results.get("1")
    ratios = {
        count: {step: round(row[step]["median"] / one[step]["median"], 2) for step in steps}
        for count, row in results.items()
        if one
    }
    # The least ratio this machine allows: each run's floor (its busy CPU seconds over the cores,
    # the median run's) against one host's wall time.
    cores = started_with["cores"]
    floors = {
        count: {
            step: round(row["cpu"][step]["machine_cpu_s"] / cores / one[step]["median"], 2) for step in steps
        }
        for count, row in results.items()
        if one
    }
    out = {
        "command": " ".join(["bench/cluster.py", *sys.argv[1:]]),
        "ratios_to_one_host": ratios,
        "floor_ratios_to_one_host": floors,
        "machine": started_with,
        "image": IMAGE,
        "rounds": args.rounds,
        "app_hosts": results,
    }
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
