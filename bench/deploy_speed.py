#!/usr/bin/env python3
"""One host's deploy time, this tree beside an earlier revision of it, in one run.

    bench/deploy_speed.py [--baseline REV] [--rounds 3] [--out bench/results/deploy_speed.json]

Two Debian 13 containers with systemd, one per tree, reached through the podman connection:
the earlier revision (a `git worktree` of --baseline) deploys the example app into one, this
tree into the other, each with its own playbooks, roles and ansible.cfg. After a first deploy
each, the rounds alternate between the two trees, so both see the same machine load:

    noop      the same release again: nothing changes (the recap must say changed=0)
    release   a new release (a new version of the example app)

Each figure is the wall time of `ansible-playbook playbooks/deploy.yml`. The ratio of the two
trees' medians is the figure to read on a shared machine. Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "molecule" / "shared"))
from gunship_testkit import versioned_source  # noqa: E402  (path set above)
from release_cycle import machine, spread, timed_deploy, wait_for_systemd  # noqa: E402  (beside this file)

IMAGE = "localhost/gunship-debian:trixie"
WORK = PROJECT / "bench" / ".work" / "speed"
CONTAINERS = {"baseline": "gunship-bench-speed-base", "this": "gunship-bench-speed-this"}


def sh(*args: str, cwd: Path | None = None) -> str:
    run = subprocess.run(args, capture_output=True, text=True, check=False, cwd=cwd)
    if run.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
    return run.stdout.strip()


def start(name: str) -> None:
    subprocess.run(["podman", "rm", "-f", name], capture_output=True, check=False)
    sh(
        "podman", "run", "-d", "--name", name, "--hostname", name, "--privileged", "--runtime", "runc",
        "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768", IMAGE, "/lib/systemd/systemd",
    )  # fmt: skip
    wait_for_systemd(name)


def inventory(tree: Path, name: str) -> Path:
    root = WORK / f"inventory-{name}"
    shutil.rmtree(root, ignore_errors=True)
    (root / "group_vars").mkdir(parents=True)
    hosts = {"all": {"children": {"app": {"hosts": {name: {"ansible_connection": "podman"}}}}}}
    (root / "hosts.yml").write_text(json.dumps(hosts))
    settings = {
        "app_name": "gunship-example",
        "app_wsgi": "gunship_example:create_app()",
        "app_static_dir": "gunship_example/static",
        "app_health_path": "/healthz",
        "app_server_names": ["localhost"],
        "app_env": {"GUNSHIP_SECRET_TOKEN": "bench-secret"},
        "release_build_dir": str(WORK / f"build-{name}"),
    }
    (root / "group_vars" / "app.yml").write_text(json.dumps(settings))
    return root


def deploy(tree: Path, inv: Path, source: Path) -> tuple[float, str]:
    """`ansible-playbook playbooks/deploy.yml` of `tree`, with that tree's ansible.cfg, timed."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(tree / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    command = [str(PROJECT / ".venv" / "bin" / "ansible-playbook"), "playbooks/deploy.yml", "-i", str(inv),
               "-e", json.dumps({"app_source": str(source)})]  # fmt: skip
    return timed_deploy(
        lambda: subprocess.run(
            command, cwd=tree, env=env, capture_output=True, text=True, check=False, timeout=1800
        ),
        f"deploy with {tree}",
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="HEAD~1", help="the earlier revision (a git rev)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="bench/results/deploy_speed.json")
    args = parser.parse_args()
    started_with = machine()
    WORK.mkdir(parents=True, exist_ok=True)
    base_tree = WORK / "baseline-tree"
    subprocess.run(["git", "worktree", "remove", "--force", str(base_tree)], cwd=PROJECT, capture_output=True)
    baseline = sh("git", "rev-parse", "--short", args.baseline, cwd=PROJECT)
    sh("git", "worktree", "add", "--detach", str(base_tree), baseline, cwd=PROJECT)
    trees = {"baseline": base_tree, "this": PROJECT}
    sources = WORK / "src"
    shutil.rmtree(sources, ignore_errors=True)
    sources.mkdir()
    try:
        for name in CONTAINERS.values():
            start(name)
        invs = {label: inventory(trees[label], CONTAINERS[label]) for label in trees}
        first = versioned_source(sources, "1.0.0")
        for label in trees:
            seconds, _ = deploy(trees[label], invs[label], first)
            print(f"{label}: first deploy {seconds:.1f} s", flush=True)
        times: dict[str, dict[str, list[float]]] = {label: {"noop": [], "release": []} for label in trees}
        changed: dict[str, list[str]] = {label: [] for label in trees}
        live = first
        for round_no in range(args.rounds):
            new = versioned_source(sources, f"1.{round_no + 1}.0")
            for step, source in (("noop", live), ("release", new)):
                for label in trees:
                    seconds, recap = deploy(trees[label], invs[label], source)
                    times[label][step].append(seconds)
                    if step == "noop":
                        changed[label].append(recap)
                    print(
                        f"round {round_no + 1}: {label} {step} {seconds:.1f} s (changed={recap})", flush=True
                    )
            live = new
    finally:
        subprocess.run(["podman", "rm", "-f", *CONTAINERS.values()], capture_output=True, check=False)
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(base_tree)], cwd=PROJECT, capture_output=True
        )
    result = {
        label: {step: spread(values) for step, values in steps.items()} for label, steps in times.items()
    }
    out = {
        "command": " ".join(["bench/deploy_speed.py", *sys.argv[1:]]),
        "machine": started_with,
        "baseline": baseline,
        "this": sh("git", "rev-parse", "--short", "HEAD", cwd=PROJECT),
        "rounds": args.rounds,
        "seconds": result,
        "noop_changed": changed,
        "ratio_this_to_baseline": {
            step: round(result["this"][step]["median"] / result["baseline"][step]["median"], 2)
            for step in ("noop", "release")
        },
    }
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out["ratio_this_to_baseline"]))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
