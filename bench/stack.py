#!/usr/bin/env python3
"""The served stack against the alternatives, and the deploy cycle, side by side in one run.

    bench/stack.py [--quick] [--out bench/results/stack.json]     (`make bench` runs it)

Starts a sandbox container of its own (Debian 13 with systemd and an SSH server, `gunship-bench`),
deploys the example app into it with the real playbook over SSH as a user does, timing the deploy
cycle on the way (first deploy onto the fresh container, a no-op redeploy, a new release, the
rollback playbook). Then, in the
same container and from the same release's venv, it starts the alternatives next to Gunship's
stack, each on a port published on 127.0.0.1:

    gunship   Nginx -> Gunicorn, as deployed (port 80)       dev       Flask's development server
    direct    Gunicorn with Gunship's workers, no Nginx      default   Gunicorn's defaults (1 sync worker)
    static    Nginx serving a static file (the ceiling)      gthread / gevent   the I/O worker profiles
    uwsgi     Nginx -> uWSGI (uwsgi_pass), as deployed       uwsgi_direct   uWSGI's http-socket, no Nginx
                                                             uwsgi_threads  uWSGI with 4 threads a worker
    asgi      Nginx -> Gunicorn + uvicorn's worker, deployed asgi_direct / uvicorn_direct
              (the ASGI example, Starlette)                  Gunicorn's asgi and uvicorn's worker, no Nginx

The uwsgi stack is a second app, the same example app from the same source, deployed into the
same container with `app_server: uwsgi`; the asgi stack a third, the ASGI example
(examples/asgiapp) with `app_interface: asgi`. It measures with wrk from the host: throughput and
latency of GET /version for each (as a ratio to the Gunship stack); a worker sweep from 1 to
(4 x cores) + 1 for Gunicorn and for uWSGI; the CPU-bound table (N concurrent CPU-bound
requests); the I/O-bound table (10 concurrent requests that each wait); memory per worker of
both deployed stacks after the same warm-up; slow clients (fast requests' success while K slow
clients hold connections), direct and through Nginx. Every figure is a median of several
repetitions with its min and max. Not a test: it asserts nothing; it writes what it measured
for bench/report.py.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "molecule" / "shared"))
from gunship_testkit import playbook, ssh_inventory, versioned_source  # noqa: E402  (path set above)
from release_cycle import deploy_key, ready_host, spread  # noqa: E402  (beside this file)
from release_cycle import machine as host_machine  # noqa: E402

CONTAINER = "gunship-bench"
IMAGE = "localhost/gunship-debian:trixie"
APP = "gunship-example"
ROOT = f"/srv/{APP}"
# The same example app, deployed beside it with `app_server: uwsgi` (Nginx -> uWSGI).
UWSGI_APP = "gunship-uwsgi"
# The ASGI example (Starlette), deployed beside them with `app_interface: asgi`.
ASGI_APP = "gunship-asgi"
WORK = PROJECT / "bench" / ".work" / "stack"
HOST_HEADER = "localhost"
# name -> (port inside the container, port published on the host's loopback)
PORTS = {
    "gunship": (80, 18180),
    "direct": (8001, 18181),
    "dev": (8002, 18182),
    "default": (8003, 18183),
    "sweep": (8004, 18184),
    "gthread": (8005, 18185),
    "gevent": (8006, 18186),
    "probe": (8007, 18187),
    "gthread_1000": (8008, 18188),
    "uwsgi": (8010, 18190),  # the uWSGI app's Nginx (app_http_port)
    "uwsgi_direct": (8011, 18192),
    "uwsgi_sweep": (8012, 18193),
    "uwsgi_threads": (8013, 18194),
    "asgi": (8020, 18195),  # the ASGI app's Nginx (app_http_port)
    "asgi_direct": (8021, 18196),
    "uvicorn_direct": (8022, 18197),
    "ssh": (22, 18122),
}
CORES = 2  # replaced by the container's own count once it runs


# --- the container -------------------------------------------------------------------------


def podman(*args: str, check: bool = True, capture: bool = True) -> str:
    run = subprocess.run(["podman", *args], capture_output=capture, text=True, check=False)
    if check and run.returncode != 0:
        sys.exit(f"podman {' '.join(args)} failed:\n{run.stderr}")
    return (run.stdout or "").strip()


def on_host(command: str, check: bool = True) -> str:
    return podman("exec", CONTAINER, "sh", "-c", command, check=check)


def fresh_container() -> None:
    podman("rm", "-f", CONTAINER, check=False)
    publish = [arg for inner, outer in PORTS.values() for arg in ("--publish", f"127.0.0.1:{outer}:{inner}")]
    podman(
        "run",
        "-d",
        "--name",
        CONTAINER,
        "--hostname",
        CONTAINER,
        "--systemd=always",
        "--privileged",
        *publish,
        IMAGE,
        "/lib/systemd/systemd",
    )
    ready_host(CONTAINER, deploy_key(WORK))
    # A new container has a new host key: forget the one seen before.
    (WORK / "known_hosts").unlink(missing_ok=True)


# Every release of both apps gets the same requirements: Gunicorn, gevent and pyuwsgi (the
# package Gunship installs for `app_server: uwsgi`). So every alternative started next to the
# stack, Gunicorn or uWSGI, runs the same app on the same Python with the same libraries from
# one venv, and the uWSGI app's venv holds the same wheels as the Gunicorn app's.
RELEASE_REQUIREMENTS = ["gunicorn>=23,<28", "gunicorn[gevent]>=23,<28", "pyuwsgi>=2.0.28,<2.1"]


def inventory() -> str:
    """An SSH inventory for the bench container: the example app, with gevent and pyuwsgi in
    every release so that the gevent profile and uWSGI can run from the same venv."""
    inv = ssh_inventory(
        WORK,
        CONTAINER,
        PORTS["ssh"][1],
        deploy_key(WORK),
        app_server_names=[HOST_HEADER, "127.0.0.1"],
        release_requirements=RELEASE_REQUIREMENTS,
    )
    return str(inv)


def deploy_uwsgi_app(inv: str, source: Path) -> float:
    """The example app again, as UWSGI_APP with `app_server: uwsgi`, its Nginx site on its own
    port: uwsgi.ini from the uwsgi role, uwsgi_pass to the slot's socket, as a user deploys it.
    The same source and build directory: the wheel and wheelhouse are the Gunicorn app's."""
    settings = {
        "app_name": UWSGI_APP,
        "app_server": "uwsgi",
        "app_http_port": PORTS["uwsgi"][0],
        "app_source": str(source),
    }
    seconds, _ = timed_playbook("deploy.yml", inv, "-e", json.dumps(settings))
    print(f"uwsgi app deployed in {seconds:.1f} s", flush=True)
    return seconds


# The ASGI app's releases get both ASGI worker classes: Gunicorn's own and uvicorn's.
ASGI_REQUIREMENTS = ["gunicorn>=25.1,<28", "uvicorn-worker>=0.3,<1", "websockets>=14"]


def deploy_asgi_app(inv: str) -> float:
    """The ASGI example as ASGI_APP with `app_interface: asgi`, its Nginx site on its own port,
    as a user deploys it: uvicorn's worker under Gunicorn, (2 x cores) + 1 workers, websockets on."""
    root = WORK / "src-asgi"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    settings = {
        "app_name": ASGI_APP,
        "app_interface": "asgi",
        "app_wsgi": "gunship_asgi_example:app",
        "app_static_dir": "gunship_asgi_example/static",
        "app_http_port": PORTS["asgi"][0],
        "app_source": str(versioned_source(root, "1.0.0", example="asgiapp")),
        "release_requirements": ASGI_REQUIREMENTS,
    }
    seconds, _ = timed_playbook("deploy.yml", inv, "-e", json.dumps(settings))
    print(f"asgi app deployed in {seconds:.1f} s", flush=True)
    return seconds


def sources(*versions: str) -> list[Path]:
    """Fresh copies of the example app at each version (a new directory every run)."""
    root = WORK / "src"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    return [versioned_source(root, version) for version in versions]


def timed_playbook(name: str, inv: str, *args: str) -> tuple[float, str]:
    started = time.perf_counter()
    run = playbook(name, inv, *args, timeout=1800)
    seconds = time.perf_counter() - started
    if run.returncode != 0:
        sys.exit(f"{name} failed:\n{run.stdout[-4000:]}\n{run.stderr[-2000:]}")
    recap = re.findall(r"changed=(\d+)", run.stdout)
    return seconds, recap[-1] if recap else "?"


def deploy_cycle(rounds: int) -> dict:
    """First deploy onto a fresh container, no-op redeploy, new release, rollback playbook."""
    inv = inventory()
    v1, v2 = sources("1.0.0", "2.0.0")
    times: dict[str, list[float]] = {"first": [], "noop": [], "new_release": [], "rollback_playbook": []}
    changed: dict[str, str] = {}
    for round_no in range(rounds):
        fresh_container()
        # A first deploy builds the wheel and resolves the wheelhouse; later ones reuse them.
        shutil.rmtree(WORK / "build", ignore_errors=True)
        for step, extra in (("first", v1), ("noop", v1), ("new_release", v2)):
            seconds, changed[step] = timed_playbook(
                "deploy.yml", inv, "-e", json.dumps({"app_source": str(extra)})
            )
            times[step].append(seconds)
            print(
                f"deploy cycle {round_no + 1}: {step} {seconds:.1f} s (changed={changed[step]})", flush=True
            )
        seconds, changed["rollback_playbook"] = timed_playbook("rollback.yml", inv)
        times["rollback_playbook"].append(seconds)
        print(f"deploy cycle {round_no + 1}: rollback playbook {seconds:.1f} s", flush=True)
    return {step: spread(values) for step, values in times.items()} | {"changed": changed}


# --- servers next to the stack -------------------------------------------------------------


def master_of_stack(app: str = APP, server: str = "gunicorn") -> int:
    """The main process of the app's live slot (Gunicorn's arbiter, uWSGI's master)."""
    slot = on_host(f"readlink /srv/{app}/slots/live")
    return int(on_host(f"systemctl show -p MainPID --value {server}-{app}@{slot}.service"))


def workers_of_stack(app: str = APP, server: str = "gunicorn") -> int:
    return len(on_host(f"pgrep -P {master_of_stack(app, server)}").split())


def start(name: str, command: str, app: str = APP) -> None:
    """Run `command` in the container as the app's user, from its live release, in the background."""
    stop(name)
    inner, outer = PORTS[name]
    server = command.format(port=inner, venv=f"/srv/{app}/current/venv")
    line = f"cd /tmp && exec {server} >/tmp/bench-{name}.log 2>&1"
    podman("exec", "-d", "--user", app, CONTAINER, "sh", "-c", line)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{outer}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    sys.exit(f"{name} did not start:\n{on_host(f'cat /tmp/bench-{name}.log', check=False)}")


def stop(name: str) -> None:
    inner, _ = PORTS[name]
    # [.] keeps the pattern from matching this shell's own command line. Wait until every
    # process is gone: the next server on this port binds it.
    pattern = f"0.0.0.0[:]{inner} |--port[ ]{inner} "
    on_host(
        f"pkill -f -- '{pattern}'; for _ in $(seq 50); do pgrep -f -- '{pattern}' >/dev/null || break; "
        "sleep 0.2; done; sleep 0.3",
        check=False,
    )


# What Gunship's gunicorn.conf.py sets beyond the workers and costs CPU per request: worker
# recycling (its access log is off by default: Nginx logs every request). "direct" runs with
# it, so that it differs from the stack by Nginx alone.
GUNSHIP_SETTINGS = "--max-requests 1000 --max-requests-jitter 100"


def gunicorn(workers: int, worker_class: str = "sync", extra: str = "") -> str:
    return (
        "{venv}/bin/gunicorn --bind 0.0.0.0:{port} "
        f"--workers {workers} --worker-class {worker_class} {extra} 'gunship_example:create_app()'"
    )


# uWSGI started by hand from the same venv, answering HTTP itself (http-socket: no router process
# in between), with what Gunship's uwsgi.ini sets that costs CPU per request: worker recycling,
# and no request log (Nginx logs every request). die-on-term: TERM ends it (by default uWSGI
# reloads on TERM); need-app: no app, no start. http-socket closes the connection after each
# response without saying so, and wrk counts a read error for every one: `Connection: close`
# says it, as Gunicorn's sync worker does, so both serve one request per connection.
UWSGI_SETTINGS = "--max-requests 1000 --max-requests-delta 100"


def uwsgi(workers: int, threads: int = 1, extra: str = "") -> str:
    return (
        "{venv}/bin/uwsgi --http-socket 0.0.0.0:{port} --master --die-on-term --need-app --strict "
        "--single-interpreter --disable-logging --add-header 'Connection: close' "
        f"--processes {workers} --threads {threads} {extra} --module 'gunship_example:create_app()'"
    )


def gunicorn_asgi(workers: int, worker_class: str) -> str:
    """The ASGI example under Gunicorn with an ASGI worker class, recycled as Gunship renders
    it: Gunicorn's own worker after about 1000 requests, uvicorn's never (it drops requests as
    it recycles)."""
    recycling = "" if "Uvicorn" in worker_class else GUNSHIP_SETTINGS
    return (
        "{venv}/bin/gunicorn --bind 0.0.0.0:{port} "
        f"--workers {workers} --worker-class {worker_class} {recycling} gunship_asgi_example:app"
    )


DEV = "{venv}/bin/flask --app 'gunship_example:create_app()' run --host 0.0.0.0 --port {port} "


# --- measuring -----------------------------------------------------------------------------


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(port: int, path: str, seconds: float, connections: int) -> dict:
    """One wrk run from the host: requests per second, p50/p99 latency in ms, errors."""
    run = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "--timeout",
            "5s",
            "-H",
            f"Host: {HOST_HEADER}",
            f"http://127.0.0.1:{port}{path}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    out = run.stdout

    def latency(pct: str) -> float:
        value, unit = re.search(rf"^\s+{pct}%\s+([0-9.]+)(us|ms|s)\s*$", out, re.MULTILINE).groups()
        return float(value) * UNITS[unit]

    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    return {
        "rps": float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1)),
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "requests": requests,
        "errors": sum(int(n) for n in errors.groups()) if errors else 0,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


WRK_FIGURES = ("rps", "p50_ms", "p99_ms")


def summary(runs: list[dict], keys: tuple[str, ...]) -> dict:
    """Each figure's median and spread over the runs, and the runs themselves."""
    return {key: spread([r[key] for r in runs]) for key in keys} | {"runs": runs}


def repeated(measure: Callable[[], dict], rounds: int, keys: tuple[str, ...]) -> dict:
    return summary([measure() for _ in range(rounds)], keys)


def served_stack(rounds: int, seconds: float, connections: int) -> dict:
    """GET /version through each configuration, rounds interleaved so drift hits all alike."""
    configs = {
        "dev": ("dev", "/version"),
        "default": ("default", "/version"),
        "direct": ("direct", "/version"),
        "gunship": ("gunship", "/version"),
        "uwsgi_direct": ("uwsgi_direct", "/version"),
        "uwsgi": ("uwsgi", "/version"),
        "asgi_direct": ("asgi_direct", "/version"),
        "uvicorn_direct": ("uvicorn_direct", "/version"),
        "asgi": ("asgi", "/version"),
        "static": ("gunship", "/static/style.css"),
    }
    runs: dict[str, list[dict]] = {name: [] for name in configs}
    for round_no in range(rounds):
        for name, (server, path) in configs.items():
            result = wrk(PORTS[server][1], path, seconds, connections)
            runs[name].append(result)
            print(
                f"stack {round_no + 1}/{rounds} {name:<12} {result['rps']:8.0f} req/s "
                f"p50 {result['p50_ms']:6.2f} ms p99 {result['p99_ms']:7.2f} ms",
                flush=True,
            )
    out = {
        name: summary(results, WRK_FIGURES) | {"errors": sum(r["errors"] + r["non_2xx"] for r in results)}
        for name, results in runs.items()
    }
    base = out["gunship"]["rps"]["median"]
    for name in out:
        out[name]["ratio_to_gunship"] = out[name]["rps"]["median"] / base
    return out


def worker_sweep(counts: list[int], rounds: int, seconds: float, connections: int) -> dict:
    """Gunicorn and uWSGI, each answering HTTP itself, at each worker count in turn."""
    servers = {
        "gunicorn": ("sweep", lambda count: gunicorn(count)),
        "uwsgi": ("uwsgi_sweep", lambda count: uwsgi(count)),
    }
    out: dict[str, dict] = {server: {} for server in servers}
    for count in counts:
        for server, (name, command) in servers.items():
            start(name, command(count))
            out[server][str(count)] = repeated(
                lambda name=name: wrk(PORTS[name][1], "/version", seconds, connections),
                rounds,
                WRK_FIGURES,
            )
            stop(name)
        print(
            f"sweep {count} workers: "
            + "  ".join(
                f"{server} {out[server][str(count)]['rps']['median']:.0f} req/s" for server in servers
            ),
            flush=True,
        )
    return out


def concurrent(port: int, path: str, n: int, timeout: float) -> float:
    """Wall time for n requests started together; every one must answer 200."""
    failures: list[str] = []

    def one() -> None:
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Host": HOST_HEADER})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                answer.read()
        except OSError as error:
            failures.append(str(error))

    threads = [threading.Thread(target=one) for _ in range(n)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"{len(failures)} of {n} requests failed: {failures[0]}")
    return time.perf_counter() - started


def cpu_table(ns: list[int], rounds: int, target_seconds: float) -> dict:
    """N concurrent CPU-bound requests: the development server, Gunicorn -w 1, Gunship."""
    # Calibrate the work so that one request takes about target_seconds on this machine.
    probe = json.loads(
        urllib.request.urlopen(f"http://127.0.0.1:{PORTS['direct'][1]}/cpu?rounds=200000").read()
    )
    work = max(10_000, min(5_000_000, int(200_000 * target_seconds / probe["seconds"])))
    path = f"/cpu?rounds={work}"
    servers = {
        "dev": PORTS["dev"][1],
        "gunicorn_w1": PORTS["default"][1],
        "gunship": PORTS["gunship"][1],
        "uwsgi": PORTS["uwsgi"][1],
    }
    single = {
        name: spread([concurrent(port, path, 1, 120) for _ in range(3)])["median"]
        for name, port in servers.items()
    }
    table: dict[str, dict] = {name: {} for name in servers}
    for n in ns:
        for name, port in servers.items():
            table[name][str(n)] = spread([concurrent(port, path, n, 300) for _ in range(rounds)])
        print(
            f"cpu N={n}: " + "  ".join(f"{k} {v[str(n)]['median']:.2f} s" for k, v in table.items()),
            flush=True,
        )
    return {
        "rounds_per_request": work,
        "single_s": single,
        "total_s": table,
        "cores": CORES,
        "expected_gunship_s": {str(n): math.ceil(n / CORES) * single["gunship"] for n in ns},
    }


def io_table(wait: float, n: int = 10) -> dict:
    """n concurrent requests that each wait `wait` seconds, per worker profile."""
    servers = {
        "sync_w1": PORTS["default"][1],
        "sync_default": PORTS["gunship"][1],
        "gthread": PORTS["gthread"][1],
        "gthread_1000": PORTS["gthread_1000"][1],
        "gevent": PORTS["gevent"][1],
        "uwsgi": PORTS["uwsgi"][1],
        "uwsgi_threads": PORTS["uwsgi_threads"][1],
        # The ASGI example's /io awaits asyncio.sleep: one event loop per worker holds every wait.
        "asgi_direct": PORTS["asgi_direct"][1],
        "uvicorn_direct": PORTS["uvicorn_direct"][1],
    }
    out = {}
    for name, port in servers.items():
        seconds = concurrent(port, f"/io?seconds={wait}", n, wait * n + 60)
        out[name] = {"total_s": seconds, "ratio_to_one_wait": seconds / wait}
        print(f"io {name}: {seconds:.2f} s for {n} x {wait} s", flush=True)
    return {"wait_s": wait, "concurrent": n, "results": out}


def memory_of(master: int) -> dict:
    """RSS (VmRSS) and PSS (smaps_rollup) in KiB of a master and each of its workers."""
    lines = on_host(
        f"for p in {master} $(pgrep -P {master}); do echo $p"
        " $(awk '/^VmRSS:/ {print $2}' /proc/$p/status)"
        " $(awk '/^Pss:/ {print $2}' /proc/$p/smaps_rollup); done"
    ).splitlines()
    rows = [[int(field) for field in line.split()] for line in lines]
    # A worker recycled (max-requests) between pgrep and reading its /proc leaves only its pid.
    (_, master_rss, master_pss), workers = rows[0], [row for row in rows[1:] if len(row) == 3]
    return {
        "master_rss_kib": master_rss,
        "master_pss_kib": master_pss,
        "worker_rss_kib": [rss for _, rss, _ in workers],
        "worker_pss_kib": [pss for _, _, pss in workers],
    }


def settled_memory(app: str, server: str, workers: int) -> dict:
    """memory_of the stack once every worker is up: a warm-up recycles each worker many times
    (max-requests), and one read mid-respawn finds fewer (uWSGI's, once, none at all)."""
    for _ in range(20):
        reading = memory_of(master_of_stack(app, server))
        if len(reading["worker_rss_kib"]) == workers:
            break
        time.sleep(0.5)
    return reading


def memory(rounds: int, seconds: float, connections: int, workers: int) -> dict:
    """Memory of the deployed stacks' masters and workers, each read right after the same
    warm-up (wrk on GET /version through its Nginx), rounds interleaved."""
    stacks = {"gunship": (APP, "gunicorn"), "uwsgi": (UWSGI_APP, "uwsgi"), "asgi": (ASGI_APP, "gunicorn")}
    runs: dict[str, list[dict]] = {name: [] for name in stacks}
    for round_no in range(rounds):
        for name, (app, server) in stacks.items():
            wrk(PORTS[name][1], "/version", seconds, connections)
            runs[name].append(settled_memory(app, server, workers))
            workers = runs[name][-1]["worker_rss_kib"]
            print(
                f"memory {round_no + 1}/{rounds} {name:<8} {len(workers)} workers, RSS "
                + ", ".join(f"{kib / 1024:.1f}" for kib in workers)
                + f" MiB; master {runs[name][-1]['master_rss_kib'] / 1024:.1f} MiB",
                flush=True,
            )
    out = {}
    for name, results in runs.items():
        out[name] = {
            "workers": len(results[-1]["worker_rss_kib"]),
            # Every worker of every round: the spread is across workers as well as rounds.
            "worker_rss_kib": spread([kib for r in results for kib in r["worker_rss_kib"]]),
            "worker_pss_kib": spread([kib for r in results for kib in r["worker_pss_kib"]]),
            "master_rss_kib": spread([r["master_rss_kib"] for r in results]),
            "total_rss_kib": spread([r["master_rss_kib"] + sum(r["worker_rss_kib"]) for r in results]),
            "total_pss_kib": spread([r["master_pss_kib"] + sum(r["worker_pss_kib"]) for r in results]),
            "runs": results,
        }
    return {"warmup_s": seconds, "connections": connections} | out


def slow_clients(counts: list[int], rounds: int, seconds: float) -> dict:
    """bench/slow_probe.py in the container, against the direct Gunicorn and through Nginx."""
    podman("cp", str(PROJECT / "bench" / "slow_probe.py"), f"{CONTAINER}:/tmp/slow_probe.py")
    targets = {"direct": f"tcp:127.0.0.1:{PORTS['direct'][0]}", "gunship": "tcp:127.0.0.1:80"}
    out: dict[str, dict] = {name: {} for name in targets}
    for k in counts:
        for name, target in targets.items():
            runs = [
                json.loads(
                    on_host(f"python3 /tmp/slow_probe.py --target {target} --slow {k} --seconds {seconds}")
                )
                for _ in range(rounds)
            ]
            keys = ("success_rate", "answered", "failed", "p50_ms", "p99_ms", "slow_dropped_by_server")
            out[name][str(k)] = {key: spread([r[key] or 0 for r in runs]) for key in keys}
            out[name][str(k)]["failures"] = sorted({f for r in runs for f in r["failures"]})
            print(
                f"slow K={k} {name}: {out[name][str(k)]['success_rate']['median']:.0%} answered", flush=True
            )
    return out


def machine() -> dict:
    """release_cycle's record of this machine, with the CPU model and every version involved."""
    cpu = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text())
    versions = {
        "python_host": sys.version.split()[0],
        "wrk": subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split("\n")[0],
        "podman": podman("--version"),
        "nginx": on_host("nginx -v 2>&1"),
        "gunicorn": on_host(f"{ROOT}/current/venv/bin/gunicorn --version"),
        "uwsgi": on_host(f"{ROOT}/current/venv/bin/uwsgi --version"),
        "python_container": on_host(f"{ROOT}/current/venv/bin/python --version"),
        "debian": on_host(". /etc/os-release && echo $PRETTY_NAME"),
    }
    return host_machine() | {"cpu": cpu.group(1) if cpu else "unknown", "versions": versions}


def merged(base: dict, rerun: dict) -> dict:
    """`base` with the sections `rerun` measured replaced, and the re-run's command recorded."""
    sections = [key for key in REPORT_KEYS.values() if key in rerun]
    return (
        base
        | {key: rerun[key] for key in sections}
        | {
            "reruns": [
                *base.get("reruns", []),
                {"command": rerun["command"], "sections": sections, "wall_seconds": rerun["wall_seconds"]},
            ]
        }
    )


# --only's section names -> where each one's figures go in the results.
REPORT_KEYS = {
    "deploy-cycle": "deploy_cycle",
    "served-stack": "served_stack",
    "worker-sweep": "worker_sweep",
    "cpu": "cpu_table",
    "io": "io_table",
    "memory": "memory",
    "slow-clients": "slow_clients",
}
SECTIONS = tuple(REPORT_KEYS)


def main() -> int:
    global CORES
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs and fewer repetitions: minutes")
    parser.add_argument(
        "--only", default=",".join(SECTIONS), help=f"comma-separated, of: {', '.join(SECTIONS)}"
    )
    parser.add_argument("--out", default=str(PROJECT / "bench" / "results" / "stack.json"))
    parser.add_argument("--keep", action="store_true", help="leave the container running afterwards")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="replace only the measured sections in an existing --out (the re-run is recorded)",
    )
    args = parser.parse_args()
    only = args.only.split(",")
    if unknown := set(only) - set(SECTIONS):
        parser.error(f"--only: unknown section(s) {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    quick = args.quick
    started = time.time()
    WORK.mkdir(parents=True, exist_ok=True)

    report: dict[str, object] = {"command": shlex.join(["bench/stack.py", *sys.argv[1:]]), "quick": quick}
    if "deploy-cycle" in only:
        report["deploy_cycle"] = deploy_cycle(rounds=1 if quick else 3)
    else:
        fresh_container()
        [v1] = sources("1.0.0")
        timed_playbook("deploy.yml", inventory(), "-e", json.dumps({"app_source": str(v1)}))
    CORES = int(on_host("nproc"))
    workers = workers_of_stack()
    report |= {"machine": machine(), "stack_workers": workers, "container_cores": CORES}
    if {"served-stack", "cpu", "io", "memory"} & set(only):
        # The copy of 1.0.0 the Gunicorn app's live release was built from, not a new one.
        v1 = WORK / "src" / "flaskapp-1.0.0"
        report["uwsgi_app_deploy_s"] = round(deploy_uwsgi_app(inventory(), v1), 1)
        report["uwsgi_stack_workers"] = workers_of_stack(UWSGI_APP, "uwsgi")
        report["asgi_app_deploy_s"] = round(deploy_asgi_app(inventory()), 1)
        report["asgi_stack_workers"] = workers_of_stack(ASGI_APP)
        start("asgi_direct", gunicorn_asgi(workers, "asgi"), app=ASGI_APP)
        start("uvicorn_direct", gunicorn_asgi(workers, "uvicorn_worker.UvicornWorker"), app=ASGI_APP)
    start("direct", gunicorn(workers, extra=GUNSHIP_SETTINGS))
    start("default", gunicorn(1))
    start("dev", DEV)
    # gthread as Gunship renders it (one connection per thread), and with Gunicorn's own
    # worker_connections (1000), side by side.
    start("gthread", gunicorn(workers, "gthread", "--threads 4 --worker-connections 4 --keep-alive 0"))
    start("gthread_1000", gunicorn(workers, "gthread", "--threads 4"))
    start("gevent", gunicorn(workers, "gevent", "--worker-connections 1000"))
    start("uwsgi_direct", uwsgi(workers, extra=UWSGI_SETTINGS))
    # The gthread profile's 4 threads a worker, its other settings left as they are, like gthread's.
    start("uwsgi_threads", uwsgi(workers, threads=4))

    seconds, rounds = (3, 2) if quick else (10, 5)
    if "served-stack" in only:
        report["served_stack"] = served_stack(rounds, seconds, connections=16)
    if "worker-sweep" in only:
        counts = [1, 3, 5, 9] if quick else list(range(1, 4 * CORES + 2))
        report["worker_sweep"] = worker_sweep(counts, 1 if quick else 3, seconds, 16)
    if "cpu" in only:
        ns = [1, 2, 4, 8] if quick else list(range(1, 11))
        report["cpu_table"] = cpu_table(ns, 1 if quick else 3, 0.1 if quick else 0.25)
    if "io" in only:
        report["io_table"] = io_table(1.0 if quick else 5.0)
    if "memory" in only:
        report["memory"] = memory(1 if quick else 3, seconds, connections=16, workers=workers)
    if "slow-clients" in only:
        counts = [0, 16] if quick else [0, 4, 16, 64]
        report["slow_clients"] = slow_clients(counts, 1 if quick else 3, 4 if quick else 8)
    report["wall_seconds"] = round(time.time() - started, 1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    if args.merge:
        report = merged(json.loads(Path(args.out).read_text()), report)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"written: {args.out} ({report['wall_seconds']:.0f} s)")
    if not args.keep:
        podman("rm", "-f", CONTAINER, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
