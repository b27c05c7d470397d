#!/usr/bin/env python3
"""Turn bench/results/*.json into docs/benchmarks.md and its plots (docs/img/bench-*.png).

    bench/report.py [--results bench/results] [--docs docs]

Reads what bench/stack.py, bench/release_cycle.py, bench/cluster.py and bench/deploy_speed.py
wrote; sections whose results are missing are left out. Every figure is a median with its
min-max spread, every comparison a ratio of configurations measured side by side in the same run.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

PROJECT = Path(__file__).resolve().parents[1]
LABELS = {
    "dev": "Flask dev server",
    "default": "Gunicorn defaults (1 sync worker)",
    "direct": "Gunicorn, Gunship's workers, direct",
    "gunship": "Gunship stack (Nginx -> Gunicorn)",
    "static": "Nginx, static file (ceiling)",
    "gunicorn_w1": "Gunicorn -w 1",
    "sync_w1": "sync, 1 worker",
    "sync_default": "sync, Gunship's workers (stack)",
    "gthread": "gthread x 4 threads, as Gunship renders it",
    "gthread_1000": "gthread x 4, worker_connections 1000",
    "uwsgi": "uWSGI stack (Nginx -> uWSGI, uwsgi protocol)",
    "uwsgi_direct": "uWSGI, Gunship's workers, direct (http-socket)",
    "uwsgi_threads": "uWSGI x 4 threads, direct",
    "asgi": "ASGI stack (Nginx -> Gunicorn, uvicorn's worker), Starlette",
    "asgi_direct": "Gunicorn's asgi worker, direct, Starlette",
    "uvicorn_direct": "uvicorn's worker, direct, Starlette",
}
COLOURS = {
    "gunship": "#1f6feb",
    "direct": "#8250df",
    "dev": "#cf222e",
    "default": "#bf8700",
    "static": "#6e7781",
    "uwsgi": "#1a7f37",
    "uwsgi_direct": "#4ac26b",
    "gunicorn_w1": "#bf8700",
    "asgi": "#953800",
    "asgi_direct": "#e16f24",
    "uvicorn_direct": "#fb8f44",
}


def ms(value: float) -> str:
    return f"{value:.2f} ms" if value < 10 else f"{value:.0f} ms"


def current_reruns(reruns: list[dict]) -> list[tuple[dict, list[str]]]:
    """Each re-run with the sections it still provides (a later re-run replaces a section)."""
    kept = []
    for i, rerun in enumerate(reruns):
        later = {section for after in reruns[i + 1 :] for section in after["sections"]}
        sections = [section for section in rerun["sections"] if section not in later]
        if sections:
            kept.append((rerun, sections))
    return kept


def span(stat: dict, fmt: str = "{:.0f}") -> str:
    return f"{fmt.format(stat['median'])} ({fmt.format(stat['min'])}-{fmt.format(stat['max'])})"


def error_bars(stats: list[dict]) -> list[list[float]]:
    """matplotlib's xerr/yerr for medians drawn with their min-max spread."""
    return [[s["median"] - s["min"] for s in stats], [s["max"] - s["median"] for s in stats]]


def heading(title: str, intro: list[str], alt: str, image: str, columns: list[str]) -> list[str]:
    """A section's title, its introduction, its plot and its table's header rows."""
    return [
        f"## {title}",
        "",
        *([*intro, ""] if intro else []),
        f"![{alt}]({image})",
        "",
        "| " + " | ".join(columns) + " |",
        "| " + " | ".join("---" for _ in columns) + " |",
    ]


def save(fig: plt.Figure, docs: Path, name: str) -> str:
    path = docs / "img" / f"bench-{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"img/{path.name}"


def served_stack(stack: dict, docs: Path) -> list[str]:
    data = stack["served_stack"]
    order = [
        name
        for name in (
            "dev",
            "default",
            "direct",
            "gunship",
            "uwsgi_direct",
            "uwsgi",
            "asgi_direct",
            "uvicorn_direct",
            "asgi",
            "static",
        )
        if name in data
    ]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    rps = [data[n]["rps"]["median"] for n in order]
    errs = error_bars([data[n]["rps"] for n in order])
    left.barh([LABELS[n] for n in order], rps, xerr=errs, color=[COLOURS[n] for n in order])
    left.set_xlabel("requests per second (median, min-max)")
    left.set_title("GET /version, wrk, 16 connections")
    for i, n in enumerate(order):
        left.text(rps[i], i, f"  {data[n]['ratio_to_gunship']:.2f}x", va="center")
    width = 0.38
    ys = range(len(order))
    right.barh([y - width / 2 for y in ys], [data[n]["p50_ms"]["median"] for n in order], width, label="p50")
    right.barh([y + width / 2 for y in ys], [data[n]["p99_ms"]["median"] for n in order], width, label="p99")
    right.set_yticks(list(ys), [LABELS[n] for n in order])
    right.set_xscale("log")
    right.set_xlabel("latency, ms (log scale)")
    right.legend()
    image = save(fig, docs, "served-stack")
    lines = heading(
        "Served stack",
        [],
        "Throughput and latency per configuration",
        image,
        ["configuration", "requests/s", "ratio to the Gunship stack", "p50", "p99", "errors"],
    )
    for n in order:
        d = data[n]
        lines.append(
            f"| {LABELS[n]} | {span(d['rps'])} | {d['ratio_to_gunship']:.2f}x | {ms(d['p50_ms']['median'])}"
            f" | {ms(d['p99_ms']['median'])} | {d['errors']} |"
        )
    direct = data["gunship"]["rps"]["median"] / data["direct"]["rps"]["median"]
    dev = data["gunship"]["rps"]["median"] / data["dev"]["rps"]["median"]
    lines += [
        "",
        f"- Gunship stack / Gunicorn direct with the same workers: **{direct:.2f}x** (target >= 0.9x).",
        f"- Gunship stack / Flask development server: **{dev:.1f}x** (target >= 3x).",
    ]
    if "uwsgi" in data:
        workers = stack.get("uwsgi_stack_workers", "the same")
        lines.append(
            f"- uWSGI stack / Gunship stack (Gunicorn), {workers} workers each: "
            f"**{data['uwsgi']['ratio_to_gunship']:.2f}x**."
        )
    if "asgi" in data:
        workers = stack.get("asgi_stack_workers", "the same")
        uvicorn = data["uvicorn_direct"]["rps"]["median"] / data["asgi_direct"]["rps"]["median"]
        lines.append(
            f"- ASGI stack (Starlette, uvicorn's worker) / Gunship stack (Flask, sync), {workers}"
            f" workers each: **{data['asgi']['ratio_to_gunship']:.2f}x**; uvicorn's worker / Gunicorn's"
            f" asgi worker, both direct: **{uvicorn:.2f}x**."
        )
    lines.append("")
    return lines


SWEEP_SERVERS = {
    "gunicorn": ("Gunicorn (sync)", COLOURS["direct"]),
    "uwsgi": ("uWSGI (http-socket)", COLOURS["uwsgi"]),
}


def worker_sweep(stack: dict, docs: Path) -> list[str]:
    sweeps = stack["worker_sweep"]
    # Results from before uWSGI held Gunicorn's sweep alone, keyed by worker count.
    if "gunicorn" not in sweeps:
        sweeps = {"gunicorn": sweeps}
    servers = [server for server in SWEEP_SERVERS if server in sweeps]
    counts = sorted(int(k) for k in sweeps["gunicorn"])
    cores = stack.get("container_cores", 2)
    chosen = 2 * cores + 1
    fig, ax = plt.subplots(figsize=(7, 4))
    for server in servers:
        data = sweeps[server]
        label, colour = SWEEP_SERVERS[server]
        ax.plot(
            counts, [data[str(c)]["rps"]["median"] for c in counts], marker="o", color=colour, label=label
        )
        ax.fill_between(
            counts,
            [data[str(c)]["rps"]["min"] for c in counts],
            [data[str(c)]["rps"]["max"] for c in counts],
            color=colour,
            alpha=0.2,
        )
    if chosen in counts:
        ax.axvline(chosen, color=COLOURS["gunship"], linestyle="--", label=f"(2 x {cores}) + 1 = {chosen}")
    ax.legend()
    ax.set_xlabel("workers (one thread each)")
    ax.set_ylabel("requests per second")
    ax.set_title("Direct, no Nginx, GET /version, 16 connections")
    ax.set_ylim(bottom=0)
    image = save(fig, docs, "worker-sweep")
    columns = ["workers"]
    for server in servers:
        columns += [f"{SWEEP_SERVERS[server][0]}: requests/s", "p99"]
    lines = heading("Worker sweep", [], "Throughput against worker count", image, columns)
    for c in counts:
        mark = " (Gunship's default)" if c == chosen else ""
        cells = [
            f"{span(sweeps[s][str(c)]['rps'])} | {ms(sweeps[s][str(c)]['p99_ms']['median'])}" for s in servers
        ]
        lines.append(f"| {c}{mark} | " + " | ".join(cells) + " |")
    lines.append("")
    for server in servers:
        data = sweeps[server]
        best = max(counts, key=lambda c: data[str(c)]["rps"]["median"])
        if str(chosen) in data:
            share = data[str(chosen)]["rps"]["median"] / data[str(best)]["rps"]["median"]
            lines.append(
                f"- {SWEEP_SERVERS[server][0]}: peak at {best} workers; Gunship's (2 x {cores}) + 1"
                f" = {chosen} reaches {share:.0%} of it."
            )
    lines.append("")
    return lines


def cpu_table(stack: dict, docs: Path) -> list[str]:
    data = stack["cpu_table"]
    servers = list(data["total_s"])
    ns = sorted(int(n) for n in data["total_s"][servers[0]])
    fig, ax = plt.subplots(figsize=(7, 4))
    for name in servers:
        colour = COLOURS[name]
        ax.plot(
            ns,
            [data["total_s"][name][str(n)]["median"] for n in ns],
            marker="o",
            label=LABELS[name],
            color=colour,
        )
    ax.plot(
        ns,
        [data["expected_gunship_s"][str(n)] for n in ns],
        linestyle=":",
        color="black",
        label="ceil(N / cores) x one request",
    )
    ax.set_xlabel("concurrent CPU-bound requests (N)")
    ax.set_ylabel("seconds until the last answers")
    ax.legend()
    image = save(fig, docs, "cpu-bound")
    lines = heading(
        "CPU-bound requests",
        [
            f"Each request hashes {data['rounds_per_request']:,} times (one takes about "
            f"{data['single_s']['gunship']:.2f} s). N start together; the figure is the time until the last"
            " one answers."
        ],
        "Total time for N concurrent CPU-bound requests",
        image,
        ["N", *(LABELS[s] for s in servers), "ceil(N / cores) x one"],
    )
    for n in ns:
        cells = [f"{data['total_s'][s][str(n)]['median']:.2f} s" for s in servers]
        lines.append(f"| {n} | " + " | ".join(cells) + f" | {data['expected_gunship_s'][str(n)]:.2f} s |")
    worst = max(data["total_s"]["gunship"][str(n)]["median"] / data["expected_gunship_s"][str(n)] for n in ns)
    lines += ["", f"Gunship's time against ceil(N / cores) x one request: at most {worst:.2f}x across N."]
    if "uwsgi" in data["total_s"]:
        ratio = max(
            data["total_s"]["uwsgi"][str(n)]["median"] / data["total_s"]["gunship"][str(n)]["median"]
            for n in ns
        )
        lines.append(f"The uWSGI stack against Gunship's (Gunicorn) stack: at most {ratio:.2f}x across N.")
    lines.append("")
    return lines


def io_table(stack: dict, docs: Path) -> list[str]:
    data = stack["io_table"]
    names = list(data["results"])
    fig, ax = plt.subplots(figsize=(7, 3.5))
    totals = [data["results"][n]["total_s"] for n in names]
    ax.barh([LABELS.get(n, n) for n in names], totals, color=COLOURS["gunship"])
    ax.axvline(data["wait_s"], color="black", linestyle=":", label=f"one wait ({data['wait_s']:.0f} s)")
    ax.set_xlabel(f"seconds for {data['concurrent']} concurrent requests")
    ax.legend()
    image = save(fig, docs, "io-bound")
    lines = heading(
        "I/O-bound requests",
        [
            f"{data['concurrent']} requests start together; each waits {data['wait_s']:.0f} s"
            " (like a call to a slow upstream). The Flask app's route calls time.sleep (which gevent"
            " patches); the ASGI example's awaits asyncio.sleep, so one event loop per worker holds"
            " every wait."
        ],
        "Total time for concurrent waiting requests",
        image,
        ["worker profile", "total", "x one wait"],
    )
    for n in names:
        r = data["results"][n]
        lines.append(f"| {LABELS.get(n, n)} | {r['total_s']:.2f} s | {r['ratio_to_one_wait']:.2f}x |")
    lines.append("")
    return lines


def mib(kib: float) -> str:
    return f"{kib / 1024:.1f} MiB"


def memory(stack: dict, docs: Path) -> list[str]:
    data = stack["memory"]
    names = [name for name in ("gunship", "uwsgi", "asgi") if name in data]
    fig, ax = plt.subplots(figsize=(9, 3))
    width = 0.38
    ys = range(len(names))
    for offset, key, label in ((-width / 2, "worker_rss_kib", "RSS"), (width / 2, "worker_pss_kib", "PSS")):
        stats = [data[n][key] for n in names]
        ax.barh(
            [y + offset for y in ys],
            [s["median"] / 1024 for s in stats],
            width,
            xerr=[[e / 1024 for e in side] for side in error_bars(stats)],
            label=label,
        )
    ax.set_yticks(list(ys), [LABELS[n] for n in names])
    ax.set_xlabel("MiB per worker (median; min-max over workers, rounds)")
    ax.legend()
    image = save(fig, docs, "memory")
    lines = heading(
        "Memory per worker",
        [
            f"Both deployed stacks, each read right after the same warm-up ({data['warmup_s']:g} s of wrk,"
            f" {data['connections']} connections, GET /version through its Nginx): VmRSS from"
            " /proc/<pid>/status, and PSS from /proc/<pid>/smaps_rollup, which splits pages shared"
            " between processes among them. Gunship's Gunicorn imports the app in each worker"
            " (preload_app off); its uwsgi.ini imports it in the master and forks the workers, which"
            " share those pages: RSS counts them in every worker, PSS once. Both recycle a worker"
            " after about 1000 requests (max-requests), so a worker read here is young.",
        ],
        "Memory per worker",
        image,
        ["stack", "workers", "RSS per worker", "PSS per worker", "master RSS", "total RSS", "total PSS"],
    )
    for n in names:
        d = data[n]
        lines.append(
            f"| {LABELS[n]} | {d['workers']} | {mib(d['worker_rss_kib']['median'])} "
            f"({mib(d['worker_rss_kib']['min'])}-{mib(d['worker_rss_kib']['max'])}) | "
            f"{mib(d['worker_pss_kib']['median'])} | {mib(d['master_rss_kib']['median'])} | "
            f"{mib(d['total_rss_kib']['median'])} | {mib(d['total_pss_kib']['median'])} |"
        )
    lines.append("")
    return lines


def slow_clients(stack: dict, docs: Path) -> list[str]:
    data = stack["slow_clients"]
    ks = sorted(int(k) for k in data["direct"])
    fig, ax = plt.subplots(figsize=(7, 3.5))
    width = 0.38
    xs = range(len(ks))
    for offset, name in ((-width / 2, "direct"), (width / 2, "gunship")):
        ax.bar(
            [x + offset for x in xs],
            [100 * data[name][str(k)]["success_rate"]["median"] for k in ks],
            width,
            label=LABELS[name],
            color=COLOURS[name],
        )
    ax.set_xticks(list(xs), [str(k) for k in ks])
    ax.set_xlabel("slow clients holding connections (K)")
    ax.set_ylabel("fast requests answered, %")
    ax.set_ylim(0, 105)
    ax.legend(loc="lower left")
    image = save(fig, docs, "slow-clients")
    lines = heading(
        "Slow clients",
        [
            "K slow clients (half trickle a header, half a body, a line or byte a second) hold connections"
            " while two fast clients GET /version with a 3 s limit."
        ],
        "Fast requests answered with K slow clients",
        image,
        ["K", "direct: answered", "direct: p50", "through Nginx: answered", "through Nginx: p50"],
    )
    for k in ks:
        d, g = data["direct"][str(k)], data["gunship"][str(k)]
        lines.append(
            f"| {k} | {d['success_rate']['median']:.0%} ({d['answered']['median']:.0f}) | "
            f"{ms(d['p50_ms']['median']) if d['answered']['median'] else '-'} | "
            f"{g['success_rate']['median']:.0%} ({g['answered']['median']:.0f}) | "
            f"{ms(g['p50_ms']['median'])} |"
        )
    lines.append("")
    return lines


def deploy_cycle(stack: dict, release: dict | None, docs: Path) -> list[str]:
    rows = []
    cycle = stack.get("deploy_cycle")
    if cycle:
        rows += [
            ("First deploy onto a fresh container (apt installs included)", cycle["first"], None),
            (f"No-op redeploy (changed={cycle['changed']['noop']})", cycle["noop"], 8.0),
            ("Deploy of a new release", cycle["new_release"], 20.0),
            ("Rollback with the playbook", cycle["rollback_playbook"], None),
        ]
    if release:
        rows += [
            ("`fab rollback`, warm slot", release["fab_rollback_warm_s"], 1.0),
            ("`fab rollback`, cold slot", release["fab_rollback_cold_s"], None),
        ]
    if not rows:
        return []
    fig, ax = plt.subplots(figsize=(8, 3.5))
    labels = [r[0].replace("`", "") for r in rows]
    ax.barh(
        labels,
        [r[1]["median"] for r in rows],
        color=COLOURS["gunship"],
        xerr=error_bars([r[1] for r in rows]),
    )
    ax.set_xscale("log")
    ax.set_xlabel("seconds (log scale; median, min-max)")
    ax.invert_yaxis()
    image = save(fig, docs, "deploy-cycle")
    lines = heading(
        "Deploy cycle",
        [
            "`ansible-playbook` over SSH (pipelining on) from the host to the bench container, as a user",
            "deploys; `fab` over SSH to the release scenario's container.",
        ],
        "Deploy cycle wall times",
        image,
        ["step", "wall time", "target"],
    )
    for label, stat, target in rows:
        # Tenths below a minute: a median of 15.4 s must not read as the 15 s target.
        fmt = "{:.2f} s" if stat["median"] < 10 else "{:.1f} s" if stat["median"] < 60 else "{:.0f} s"
        lines.append(f"| {label} | {span(stat, fmt)} | {f'<= {target:g} s' if target else ''} |")
    if release:
        steady, switching = release["load_steady"], release["load_during_switches"]
        lines += [
            "",
            f"Under a bounded load loop during {2 * release['rounds']} switches: "
            f"{switching['failures']} failed of {switching['requests']:,} requests (target 0); p99 "
            f"{switching['p99_ms']:.2f} ms against {steady['p99_ms']:.2f} ms steady "
            f"({release['p99_ratio_switching_to_steady']:.2f}x).",
        ]
    lines.append("")
    return lines


CLUSTER_STEPS = {
    "first": "First deploy (fresh hosts)",
    "noop": "No-op redeploy",
    "rolling": "New release, one host at a time",
    "all_at_once": "New release, every host at once",
}


def cluster_table(counts: list[str], cell: Callable[[str, str], str]) -> list[str]:
    """A table of the cluster's steps: a row per count of app hosts, cell(count, step) in each."""
    return [
        "| app hosts | " + " | ".join(CLUSTER_STEPS.values()) + " |",
        "| --- " * (len(CLUSTER_STEPS) + 1) + "|",
        *(f"| {n} | " + " | ".join(cell(n, step) for step in CLUSTER_STEPS) + " |" for n in counts),
    ]


def cluster(data: dict, docs: Path) -> list[str]:
    counts = sorted(data["app_hosts"], key=int)
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for step, label in CLUSTER_STEPS.items():
        stats = [data["app_hosts"][n][step] for n in counts]
        ax.errorbar(
            [int(n) for n in counts], [s["median"] for s in stats], yerr=error_bars(stats),
            marker="o", capsize=3, label=label,
        )  # fmt: skip
    ax.set_xticks([int(n) for n in counts])
    ax.set_xlabel("app hosts behind one load balancer")
    ax.set_ylabel("seconds (median, min-max)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    image = save(fig, docs, "cluster")
    lines = heading(
        "Deploy time against the number of app hosts",
        [
            f"`{data['command']}`: for each count, a fresh cluster of containers on one podman network",
            "(a load balancer and the app hosts, each with systemd and an SSH server), deployed over SSH",
            f"with the real playbook; {data['rounds']} round(s) each. Each step includes the balancer's",
            "play. Load average at start: "
            + ", ".join(f"{x:.2f}" for x in data["machine"]["load_average_at_start"])
            + " (the cores are shared: compare the rows, not the machines).",
        ],
        "Deploy wall time for " + ", ".join(counts) + " app hosts",
        image,
        ["app hosts", *CLUSTER_STEPS.values(), "failed / requests during the rolling deploy"],
    )
    for n in counts:
        row = data["app_hosts"][n]
        load = row.get("rolling_load", {})
        seen = f"{load['failed']} / {load['requests']}" if load else "not measured"
        lines.append(
            f"| {n} | " + " | ".join(span(row[step]) + " s" for step in CLUSTER_STEPS) + f" | {seen} |"
        )
    ratios = data.get("ratios_to_one_host")
    if ratios:
        lines += ["", "Median against one app host, in the same run:", ""]
        lines += cluster_table(counts, lambda n, step: f"{ratios[n][step]:.2f}x")
    cores = data["machine"]["cores"]
    cpu = {n: data["app_hosts"][n].get("cpu") for n in counts}
    if all(cpu.values()):
        lines += [
            "",
            "Where the CPU went (median run): the control node's CPU seconds (ansible-playbook, its forks",
            f"and their ssh clients), and the share of the machine's {cores} cores busy during the run (the",
            "containers included). Near 100% busy, a run is bound by this machine's CPU: the control node",
            "and every app host share its cores, so more hosts cannot run at once any faster.",
            "",
        ]
        lines += cluster_table(
            counts,
            lambda n, step: (
                f"{cpu[n][step]['control_cpu_s']:.0f} CPU s, {cpu[n][step]['cores_busy']:.0%} busy"
            ),
        )
    floors = data.get("floor_ratios_to_one_host")
    if floors:
        lines += [
            "",
            "The floor of each run: the CPU seconds the whole machine was busy (the control node, the",
            f"app hosts' containers, the load balancer), over its {cores} cores: the least wall time any",
            "schedule of the same work could take on this machine. Each cell: the control node's and",
            "the app hosts' CPU seconds, the machine's, and that floor against one app host's wall time",
            "(the ratio no faster playbook could get under here without doing less work per host; on",
            "real hosts, each app host's share runs on its own CPUs).",
            "",
        ]
        lines += cluster_table(
            counts,
            lambda n, step: (
                f"{cpu[n][step]['control_cpu_s']:.0f} + {cpu[n][step]['app_hosts_cpu_s']:.0f} of"
                f" {cpu[n][step]['machine_cpu_s']:.0f} CPU s: floor {floors[n][step]:.2f}x"
            ),
        )
    lines.append("")
    return lines


def deploy_speed(data: dict) -> list[str]:
    """One host's no-op and new-release deploy, this tree beside an earlier revision."""
    seconds, ratio = data["seconds"], data["ratio_this_to_baseline"]
    lines = [
        "## One host's deploy time, beside an earlier revision",
        "",
        f"`{data['command']}`: revision {data['baseline']} and {data['this']} deploy the example app into",
        "a container each (podman connection), alternating, "
        f"{data['rounds']} round(s). Load average at start: "
        + ", ".join(f"{x:.2f}" for x in data["machine"]["load_average_at_start"])
        + ". The no-op runs' recaps: "
        + "; ".join(f"{label} changed={','.join(recaps)}" for label, recaps in data["noop_changed"].items())
        + ".",
        "",
        f"| step | {data['baseline']} | {data['this']} | ratio |",
        "| --- | --- | --- | --- |",
    ]
    for step, label in (("noop", "No-op redeploy"), ("release", "New release")):
        before, after = span(seconds["baseline"][step]), span(seconds["this"][step])
        lines.append(f"| {label} | {before} s | {after} s | {ratio[step]:.2f}x |")
    lines.append("")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=str(PROJECT / "bench" / "results"))
    parser.add_argument("--docs", default=str(PROJECT / "docs"))
    args = parser.parse_args()
    results, docs = Path(args.results), Path(args.docs)
    stack = json.loads((results / "stack.json").read_text())
    release_file = results / "release_cycle.json"
    release = json.loads(release_file.read_text()) if release_file.exists() else None
    m = stack["machine"]
    lines = [
        "# Benchmarks",
        "",
        "Written by `bench/report.py` from `bench/results/` after `make bench`"
        + (" (quick mode: short runs, few repetitions)" if stack.get("quick") else "")
        + ". Absolute figures on a shared machine are noisy: read the ratios, which compare configurations "
        "measured side by side in the same run. Each figure is a median with its min-max spread.",
        "",
        f"- Machine: {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB, kernel {m['kernel']}; "
        f"load average at start {', '.join(f'{x:.2f}' for x in m['load_average_at_start'])}.",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + ".",
        f"- Commands: `{stack['command']}`"
        + (f", `{release['command']}`" if release else "")
        + f"; stack run {stack['wall_seconds'] / 60:.0f} min.",
        *(
            f"- Re-run later: `{rerun['command']}` ({rerun['wall_seconds'] / 60:.0f} min) for "
            f"{', '.join(section.replace('_', ' ') for section in sections)}; "
            "those sections come from it, the others from the run above."
            for rerun, sections in current_reruns(stack.get("reruns", []))
        ),
        f"- Load: wrk on the host against ports published on 127.0.0.1; the app is the example app "
        f"(`examples/flaskapp`), Gunship's stack runs {stack['stack_workers']} sync workers "
        f"((2 x {stack['container_cores']}) + 1).",
        "",
    ]
    for name, section in (
        ("served_stack", served_stack),
        ("worker_sweep", worker_sweep),
        ("cpu_table", cpu_table),
        ("io_table", io_table),
        ("memory", memory),
        ("slow_clients", slow_clients),
    ):
        if name in stack:
            lines += section(stack, docs)
    lines += deploy_cycle(stack, release, docs)
    cluster_file = results / "cluster.json"
    if cluster_file.exists():
        lines += cluster(json.loads(cluster_file.read_text()), docs)
    speed_file = results / "deploy_speed.json"
    if speed_file.exists():
        lines += deploy_speed(json.loads(speed_file.read_text()))
    out = docs / "benchmarks.md"
    out.write_text("\n".join(line for line in lines if line is not None).rstrip() + "\n")
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
