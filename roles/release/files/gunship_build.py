#!/usr/bin/env python3
"""Build a release artifact on the control node: the app's wheel and its wheelhouse.

Hosts never build and never reach a package index: they receive a wheel built here once per
run, and a wheelhouse of every dependency resolved for *their* Python and platform.

    gunship_build.py wheel SOURCE_DIR OUT_DIR
    gunship_build.py wheelhouse WHEEL OUT_DIR --python 3.11 --machine x86_64 --glibc 2.36 \
        [--requirement SPEC]... [--constraints FILE] [--refresh]

Each prints one JSON object on stdout; errors go to stderr with exit status 1, or with
--errors-as-json (before the command) to stdout as {"error": MESSAGE} with exit status 0, for a
caller that reads only stdout (the release role runs it from a lookup, in its own process).

Both remember what they were built from (OUT_DIR.built-from.json, beside OUT_DIR): the same source tree gives
back the wheel already built, and the same wheel, requirements, constraints and target give
back the wheelhouse already resolved, without running the build or pip again. A redeploy of
unchanged code takes seconds, and re-resolves no dependency behind the user's back;
`--refresh` resolves the wheelhouse anew (newer versions the requirements allow).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

# Reproducible wheels: zip entries get this timestamp instead of the files' mtimes, so the same
# source gives the same sha256 and a redeploy of unchanged code is recognised as a no-op.
SOURCE_DATE_EPOCH = "315532800"  # 1980-01-01, the earliest time a zip entry can hold

# Never copied into the clean build tree: stale `build/` output is how deleted modules
# sneak back into a setuptools wheel.
IGNORED = shutil.ignore_patterns(
    ".git",
    ".hg",
    ".venv",
    "venv",
    ".tox",
    ".nox",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    "*.pyc",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    "node_modules",
)

OLDEST_MANYLINUX_MINOR = 5
LOCK_NAME = "requirements.lock"


class BuildError(Exception):
    pass


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def top_level_modules(wheel: Path) -> list[str]:
    """Importable top-level names a wheel installs (packages and single-file modules)."""
    names: set[str] = set()
    with zipfile.ZipFile(wheel) as archive:
        for entry in archive.namelist():
            head = entry.split("/", 1)[0]
            if head.endswith((".dist-info", ".data")):
                continue
            if "/" in entry or head.endswith(".py"):
                names.add(head.removesuffix(".py"))
            elif re.search(r"\.(so|pyd)$", head):
                names.add(head.split(".", 1)[0])
    return sorted(names)


def wheel_metadata(wheel: Path) -> tuple[str, str]:
    with zipfile.ZipFile(wheel) as archive:
        meta = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        text = archive.read(meta).decode()
    fields = dict(re.findall(r"^(Name|Version): (.+)$", text, flags=re.MULTILINE))
    return fields["Name"].strip(), fields["Version"].strip()


def tree_digest(tree: Path) -> str:
    """sha256 over every path, link target, executable bit and file content under `tree`."""
    digest = hashlib.sha256()
    for path in sorted(tree.rglob("*")):
        relative = path.relative_to(tree).as_posix()
        if path.is_symlink():
            digest.update(f"L {relative} -> {os.readlink(path)}\n".encode())
        elif path.is_file():
            executable = "x" if os.access(path, os.X_OK) else "-"
            digest.update(f"F {relative} {executable} {sha256_of(path)}\n".encode())
        else:
            digest.update(f"D {relative}\n".encode())
    return digest.hexdigest()


def built_from(out: Path) -> Path:
    """Where the inputs of what `out` holds are recorded: beside it, never copied with it."""
    return out.with_name(f"{out.name}.built-from.json")


def reuse(out: Path, key: str) -> dict[str, object] | None:
    """The result recorded for `out` under `key`, if every file it names is there unchanged."""
    try:
        record = json.loads(built_from(out).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("key") != key:
        return None
    files = record.get("files", {})
    if not files or any(
        not (out / name).is_file() or sha256_of(out / name) != sha256 for name, sha256 in files.items()
    ):
        return None
    return record["result"]


def remember(out: Path, key: str, files: dict[str, str], result: dict[str, object]) -> None:
    record = {"key": key, "files": files, "result": result}
    built_from(out).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


def build_wheel(source: Path, out: Path) -> dict[str, object]:
    if not (source / "pyproject.toml").is_file() and not (source / "setup.py").is_file():
        raise BuildError(f"{source} has neither pyproject.toml nor setup.py: not a Python project")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gunship-build-") as scratch:
        tree = Path(scratch) / "src"
        shutil.copytree(source, tree, ignore=IGNORED, symlinks=True)
        # The builder's Python is part of the input: a new interpreter builds anew.
        key = hashlib.sha256(f"{sys.version}\n{tree_digest(tree)}".encode()).hexdigest()
        if (built := reuse(out, key)) is not None:
            return built
        built_from(out).unlink(missing_ok=True)
        for old in out.glob("*.whl"):
            old.unlink()
        env = {**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH, "PYTHONHASHSEED": "0"}
        run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(tree)], env=env)
    wheels = sorted(out.glob("*.whl"))
    if len(wheels) != 1:
        raise BuildError(f"expected one wheel in {out}, found {[w.name for w in wheels]}")
    wheel = wheels[0]
    name, version = wheel_metadata(wheel)
    sha256 = sha256_of(wheel)
    result = {
        "wheel": str(wheel),
        "name": name,
        "version": version,
        "sha256": sha256,
        "modules": top_level_modules(wheel),
    }
    remember(out, key, {wheel.name: sha256}, result)
    return result


def pip_platforms(machine: str, glibc: str) -> list[str]:
    """Platform tags a glibc Linux host accepts, newest first (what pip computes on the host)."""
    match = re.fullmatch(r"(\d+)\.(\d+)", glibc)
    if not match or match.group(1) != "2":
        raise BuildError(f"unsupported glibc version {glibc!r}: expected 2.N")
    minor = int(match.group(2))
    tags = [f"manylinux_2_{m}_{machine}" for m in range(minor, OLDEST_MANYLINUX_MINOR - 1, -1)]
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    tags += [f"{alias}_{machine}" for m, alias in legacy.items() if m <= minor]
    return [*tags, f"linux_{machine}"]


def build_wheelhouse(
    wheel: Path,
    out: Path,
    python: str,
    machine: str,
    glibc: str,
    requirements: Sequence[str],
    constraints: Path | None,
    refresh: bool = False,
) -> dict[str, object]:
    if not re.fullmatch(r"3\.\d+", python):
        raise BuildError(f"unsupported target Python {python!r}: expected 3.N")
    out.mkdir(parents=True, exist_ok=True)
    inputs = {
        "wheel": sha256_of(wheel),
        "target": [python, machine, glibc],
        "requirements": list(requirements),
        "constraints": constraints.read_text() if constraints is not None else None,
    }
    key = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()
    if not refresh and (resolved := reuse(out, key)) is not None:
        return resolved
    built_from(out).unlink(missing_ok=True)
    abi = "cp" + python.replace(".", "")
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--disable-pip-version-check",
        "--dest",
        str(out),
        "--only-binary=:all:",
        "--python-version",
        python,
        "--implementation",
        "cp",
        "--abi",
        abi,
        "--abi",
        "abi3",
        "--abi",
        "none",
    ]
    for platform in pip_platforms(machine, glibc):
        command += ["--platform", platform]
    if constraints is not None:
        command += ["--constraint", str(constraints)]
    # Keep only what this resolution needs: an earlier run's leftovers must not
    # change the digest or end up on a host.
    with tempfile.TemporaryDirectory(prefix="gunship-wheelhouse-") as scratch:
        command[command.index(str(out))] = scratch
        run([*command, str(wheel), *requirements])
        for old in out.glob("*.whl"):
            old.unlink()
        for fresh in Path(scratch).glob("*.whl"):
            shutil.move(str(fresh), out / fresh.name)
    files = {path.name: sha256_of(path) for path in sorted(out.glob("*.whl"))}
    digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
    (out / LOCK_NAME).write_text(hashed_requirements(files))
    result = {"dir": str(out), "files": files, "digest": digest, "lock": LOCK_NAME}
    remember(out, key, {**files, LOCK_NAME: sha256_of(out / LOCK_NAME)}, result)
    return result


def hashed_requirements(files: dict[str, str]) -> str:
    """A pip requirements file pinning every wheel by version and sha256, for --require-hashes."""
    lines = []
    for filename, sha256 in sorted(files.items()):
        name, version = filename.split("-")[:2]
        lines.append(f"{name}=={version} --hash=sha256:{sha256}")
    return "\n".join(lines) + "\n"


def run(command: list[str], env: dict[str, str] | None = None) -> None:
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-25:])
        raise BuildError(f"{' '.join(command[:5])} ... failed (exit {result.returncode}):\n{tail}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--errors-as-json", action="store_true", help='report a failure as {"error": ...}')
    commands = parser.add_subparsers(dest="command", required=True)
    wheel = commands.add_parser("wheel", help="build the app's wheel reproducibly")
    wheel.add_argument("source", type=Path)
    wheel.add_argument("out", type=Path)
    house = commands.add_parser("wheelhouse", help="download every dependency for a target")
    house.add_argument("wheel", type=Path)
    house.add_argument("out", type=Path)
    house.add_argument("--python", required=True)
    house.add_argument("--machine", required=True)
    house.add_argument("--glibc", required=True)
    house.add_argument("--requirement", action="append", default=[])
    house.add_argument("--constraints", type=Path)
    house.add_argument("--refresh", action="store_true", help="resolve again even if nothing changed")
    args = parser.parse_args(argv)
    try:
        if args.command == "wheel":
            result = build_wheel(args.source.resolve(), args.out.resolve())
        else:
            result = build_wheelhouse(
                args.wheel.resolve(),
                args.out.resolve(),
                args.python,
                args.machine,
                args.glibc,
                args.requirement,
                args.constraints,
                args.refresh,
            )
    except BuildError as error:
        if args.errors_as_json:
            print(json.dumps({"error": str(error)}))
            return 0
        print(f"gunship_build: {error}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
