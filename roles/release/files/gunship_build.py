#!/usr/bin/env python3
"""Build a release artifact on the control node: the app's wheel and its wheelhouse.

Hosts never build and never reach a package index: they receive a wheel built here once per
run, and a wheelhouse of every dependency resolved for *their* Python and platform.

    gunship_build.py wheel SOURCE_DIR OUT_DIR
    gunship_build.py wheelhouse WHEEL OUT_DIR --python 3.11 --machine x86_64 --glibc 2.36 \
        [--extra NAME]... [--requirement SPEC]... [--constraints FILE] [--find-links DIR]... [--refresh]
    gunship_build.py digest PATH... [--source SOURCE_DIR]

`digest` prints {"digest": ...}, one sha256 over the files and trees named (Gunship's own
roles, playbooks, plugins and templates) and, with --source, the app's source tree as the wheel
is built from it: part of a deploy's fingerprint of its inputs. Missing paths count as missing;
caches (__pycache__) do not count.

Each prints one JSON object on stdout; errors go to stderr with exit status 1, or with
--errors-as-json (before the command) to stdout as {"error": MESSAGE} with exit status 0, for a
caller that reads only stdout (the release role runs it from a lookup, in its own process).

Both remember what they were built from (OUT_DIR.built-from.json, beside OUT_DIR): the same source tree gives
back the wheel already built, and the same wheel, requirements, constraints and target give
back the wheelhouse already resolved, without running the build or pip again. A redeploy of
unchanged code takes seconds, and re-resolves no dependency behind the user's back;
`--refresh` resolves the wheelhouse anew (newer versions the requirements allow).

A dependency published only as an sdist is built into a wheel here and enters the wheelhouse
like any other, pinned by its sha256, if that wheel is pure Python (py3-none-any): it fits every
host. One that compiles code is refused, naming the ways out: a wheel compiled here fits this
machine, not necessarily the hosts. `--find-links` names directories that pip may use besides
the index: wheels built for the target elsewhere, or sdists to build here.
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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

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
REPRODUCIBLE = {**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH, "PYTHONHASHSEED": "0"}

# pip's last word when a requirement has no distribution it may use, and the versions it saw.
MISSING = re.compile(r"^ERROR: No matching distribution found for (\S+)", re.MULTILINE)
SEEN = re.compile(r"satisfies the requirement (\S+)(?: \(from [^)]*\))? \(from versions: ([^)]*)\)")


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


def metadata_text(wheel: Path) -> str:
    """The wheel's METADATA file."""
    with zipfile.ZipFile(wheel) as archive:
        meta = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return archive.read(meta).decode()


def wheel_extras(wheel: Path) -> list[str]:
    """The extras a wheel declares (Provides-Extra), as its METADATA spells them."""
    found = re.findall(r"^Provides-Extra: (.+)$", metadata_text(wheel), flags=re.MULTILINE)
    return sorted(extra.strip() for extra in found)


def wheel_metadata(wheel: Path) -> tuple[str, str]:
    text = metadata_text(wheel)
    fields = dict(re.findall(r"^(Name|Version): (.+)$", text, flags=re.MULTILINE))
    return fields["Name"].strip(), fields["Version"].strip()


def tree_digest(tree: Path, ignore: Callable[[str, list[str]], set[str]] | None = None) -> str:
    """sha256 over every path, link target, executable bit and file content under `tree`, but
    for what `ignore` leaves out (a shutil.ignore_patterns, as copytree reads it)."""
    digest = hashlib.sha256()
    for top, dirs, files in os.walk(tree):
        left_out = ignore(top, dirs + files) if ignore else set()
        dirs[:] = sorted(name for name in dirs if name not in left_out)
        for name in sorted([*dirs, *(name for name in files if name not in left_out)]):
            path = Path(top, name)
            relative = path.relative_to(tree).as_posix()
            if path.is_symlink():
                digest.update(f"L {relative} -> {os.readlink(path)}\n".encode())
            elif path.is_dir():
                digest.update(f"D {relative}\n".encode())
            elif path.is_file():
                executable = "x" if os.access(path, os.X_OK) else "-"
                digest.update(f"F {relative} {executable} {sha256_of(path)}\n".encode())
            else:  # a socket or a pipe: never read
                digest.update(f"S {relative}\n".encode())
    return digest.hexdigest()


def paths_digest(paths: Sequence[Path], source: Path | None = None) -> str:
    digest = hashlib.sha256()
    if source is not None:
        # The app's source tree as build_wheel copies it.
        digest.update(f"source {tree_digest(source, IGNORED)}\n".encode())
    for path in paths:
        if path.is_dir():
            state = tree_digest(path, shutil.ignore_patterns("__pycache__"))
        else:
            state = sha256_of(path) if path.is_file() else "missing"
        digest.update(f"{path.resolve()} {state}\n".encode())
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
        built = run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(tree)], REPRODUCIBLE)
        if built.returncode != 0:
            raise BuildError(
                f"python -m build --wheel {source} failed (exit {built.returncode}):\n"
                + decisive(built.stdout)
            )
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


class Target(NamedTuple):
    """The kind of host a wheelhouse is for: what pip would compute on it."""

    python: str
    machine: str
    glibc: str

    @property
    def abi(self) -> str:
        return "cp" + self.python.replace(".", "")

    def __str__(self) -> str:
        return f"CPython {self.python} on {self.machine} with glibc {self.glibc}"

    def pip_options(self) -> list[str]:
        options = ["--python-version", self.python, "--implementation", "cp"]
        options += ["--abi", self.abi, "--abi", "abi3", "--abi", "none"]
        for platform in pip_platforms(self.machine, self.glibc):
            options += ["--platform", platform]
        return options

    def markers(self) -> dict[str, str]:
        """The environment markers pip would see on the host. pip's --python-version picks
        wheels for the target but evaluates a dependency's markers (python_full_version >=
        "3.13", platform_machine...) against the Python running pip: on a control node with
        another Python it would fetch what the host does not need and miss what it does."""
        return {
            "implementation_name": "cpython",
            "implementation_version": f"{self.python}.0",
            "os_name": "posix",
            "platform_machine": self.machine,
            "platform_python_implementation": "CPython",
            "platform_system": "Linux",
            "python_full_version": f"{self.python}.0",
            "python_version": self.python,
            "sys_platform": "linux",
        }

    def tags(self) -> str:
        newest = pip_platforms(self.machine, self.glibc)[0]
        return f"{self.abi}, abi3 or none, on {newest} or an older manylinux, or linux_{self.machine}"


class Request(NamedTuple):
    """What Gunship asks pip for, said in the words of an error when pip cannot give it."""

    target: Target
    wanted: list[str]
    constraints: Path | None
    find_links: list[Path]

    def common_options(self) -> list[str]:
        options = ["--constraint", str(self.constraints)] if self.constraints is not None else []
        return options + [f"--find-links={directory}" for directory in self.find_links]

    def describe(self, built: Sequence[str]) -> str:
        text = (
            "Gunship asked pip for wheels only (pip download --only-binary=:all:) of "
            f"{', '.join(self.wanted)} and every dependency, for {self.target} (tags {self.target.tags()})"
        )
        if self.constraints is not None:
            text += f", constrained by {self.constraints}"
        if self.find_links:
            text += f", looking in {', '.join(map(str, self.find_links))} besides the index"
        if built:
            text += f", with the wheels built here from sdists: {', '.join(built)}"
        return text + "."


def decisive(output: str, limit: int = 40) -> str:
    """pip's own error, from its first error line on, without the progress that led to it."""
    lines = [line.rstrip() for line in output.strip().splitlines()]
    first = next((i for i, line in enumerate(lines) if re.match(r"(ERROR|error):", line)), None)
    lines = lines[first:] if first is not None else lines[-25:]
    if len(lines) > limit:
        tail = limit - 10
        lines = [*lines[:10], f"[{len(lines) - limit} lines left out]", *lines[-tail:]]
    return "\n".join(lines)


def is_pure(wheel_name: str) -> bool:
    """A wheel every CPython 3 host installs: py3-none-any or py2.py3-none-any."""
    python_tags, abi, platform = wheel_name.removesuffix(".whl").split("-")[-3:]
    return abi == "none" and platform == "any" and "py3" in python_tags.split(".")


def ways_out(name: str, requirement: str, target: Target, versions: list[str]) -> str:
    ways = [
        f"publish a wheel of {requirement} for the target (tags {target.tags()}) to the package "
        "index this control node's pip uses",
    ]
    if versions:
        ways.append(
            f"pin a version of {name} that has such a wheel ({', '.join(versions[-5:])}) in the app's "
            "dependencies, release_requirements or release_constraints_file"
        )
    ways.append(
        f"build the wheel on a machine like the target ({target}: pip wheel --no-deps {requirement}), "
        "put it in a directory and name that directory in release_find_links (gunship_build.py "
        "--find-links DIR)"
    )
    text = "Ways out: " + "; or ".join(f"({n}) {way}" for n, way in enumerate(ways, 1)) + "."
    if not versions:
        text = f"pip found no version of {name} with a wheel for this target. {text}"
    return text


def wheel_from_sdist(
    requirement: str, seen: str, request: Request, scratch: Path, cache: Path
) -> tuple[Path, dict[str, str]]:
    """Build the sdist pip would pick for `requirement` into a pure wheel, or say why it cannot be.

    `seen` is the failed resolution's output: the versions that do have wheels for the target.
    Built wheels are kept in `cache` by their sdist's sha256, so a later resolution (a new
    release of the app) gives back the same file instead of building it again.
    """
    target = request.target
    versions = next((found for req, found in SEEN.findall(seen) if req == requirement), "none")
    # Final releases only: a pre-release is a poor thing to pin a production app to.
    versions = [v for v in map(str.strip, versions.split(",")) if re.fullmatch(r"[\d.]+(\.post\d+)?", v)]
    name = re.split(r"[^A-Za-z0-9._-]", requirement, maxsplit=1)[0]
    sdists = Path(tempfile.mkdtemp(prefix="sdist-", dir=scratch))
    # --no-deps lets pip pick an sdist for a Python other than its own: the dependencies are
    # the next resolution's business, for the target.
    download = pip(
        "download",
        "--dest",
        str(sdists),
        "--no-deps",
        f"--no-binary={name}",
        "--python-version",
        target.python,
        *request.common_options(),
        requirement,
        target=target,
    )
    if download.returncode != 0:
        output = download.stdout
        if MISSING.search(output):
            raise BuildError(
                f"pip found no wheel of {requirement} for {target}, and no sdist to build one from.\n"
                f"{request.describe([])}\npip said:\n{decisive(seen)}"
            )
        raise BuildError(
            f"{requirement} has no wheel for {target}, and pip could not prepare its sdist "
            f"(exit {download.returncode}):\n{decisive(output)}\n"
            + ways_out(name, requirement, target, versions)
        )
    sdist = next(sdists.iterdir())
    version = sdist.name.removesuffix(".tar.gz").removesuffix(".zip").rsplit("-", 1)[1]
    origin = {"sdist": sdist.name, "sha256": sha256_of(sdist)}
    kept = sorted((cache / origin["sha256"]).glob("*.whl"))
    if kept:
        return kept[0], origin
    wheels = sdists / "wheel"
    # Build isolation: the sdist gets the build requirements it declares, from the index this
    # node already uses, rather than whatever the deploy tool's own venv happens to hold.
    built = pip("wheel", "--no-deps", "--wheel-dir", str(wheels), str(sdist), env=REPRODUCIBLE)
    if built.returncode != 0:
        raise BuildError(
            f"{name} {version} has no wheel for {target}, and its sdist {sdist.name} did not build "
            f"into a wheel here (exit {built.returncode}):\n{decisive(built.stdout)}\n"
            + ways_out(name, f"{name}=={version}", target, versions)
        )
    wheel = next(wheels.glob("*.whl"))
    if not is_pure(wheel.name):
        raise BuildError(
            f"{name} {version} has no wheel for {target}, and its sdist ({sdist.name}) compiles code: "
            f"built here it gives {wheel.name}, which fits this machine, not necessarily the hosts "
            f"(hosts never build).\n{ways_out(name, f'{name}=={version}', target, versions)}"
        )
    (cache / origin["sha256"]).mkdir(parents=True, exist_ok=True)
    shutil.copy2(wheel, cache / origin["sha256"] / wheel.name)
    return wheel, origin


def listing(directory: Path) -> dict[str, str]:
    return {path.name: sha256_of(path) for path in sorted(directory.iterdir()) if path.is_file()}


def build_wheelhouse(
    wheel: Path,
    out: Path,
    python: str,
    machine: str,
    glibc: str,
    requirements: Sequence[str],
    constraints: Path | None,
    refresh: bool = False,
    find_links: Sequence[Path] = (),
    extras: Sequence[str] = (),
) -> dict[str, object]:
    if not re.fullmatch(r"3\.\d+", python):
        raise BuildError(f"unsupported target Python {python!r}: expected 3.N")
    target = Target(python, machine, glibc)
    target_options = target.pip_options()
    for directory in find_links:
        if not directory.is_dir():
            raise BuildError(f"--find-links {directory}: no such directory")
    out.mkdir(parents=True, exist_ok=True)
    inputs: dict[str, object] = {
        "wheel": sha256_of(wheel),
        "target": [python, machine, glibc],
        "requirements": list(requirements),
        "constraints": constraints.read_text() if constraints is not None else None,
        # Wheelhouses resolved with the control node's markers are resolved once more.
        "markers": target.markers(),
    }
    if find_links:  # only then, so that wheelhouses recorded before the option stay valid
        inputs["find_links"] = {str(directory): listing(directory) for directory in find_links}
    if extras:  # the same
        inputs["extras"] = sorted(extras)
    # The app with its extras (`app.whl[server]`): pip adds what each extra requires.
    with_extras = f"[{','.join(sorted(extras))}]" if extras else ""
    key = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()
    if not refresh and (resolved := reuse(out, key)) is not None:
        return resolved
    built_from(out).unlink(missing_ok=True)
    request = Request(target, [wheel.name + with_extras, *requirements], constraints, list(find_links))
    cache = out.with_name(f"{out.name}.sdist-wheels")
    # Keep only what this resolution needs: an earlier run's leftovers must not
    # change the digest or end up on a host.
    with tempfile.TemporaryDirectory(prefix="gunship-wheelhouse-") as scratch_name:
        scratch = Path(scratch_name)
        dest, local = scratch / "wheelhouse", scratch / "built"
        local.mkdir()
        built: dict[str, dict[str, str]] = {}
        while True:
            shutil.rmtree(dest, ignore_errors=True)
            download = pip(
                "download",
                "--dest",
                str(dest),
                "--only-binary=:all:",
                *target_options,
                *request.common_options(),
                f"--find-links={local}",
                f"{wheel}{with_extras}",
                *requirements,
                target=target,
            )
            if download.returncode == 0:
                break
            output = download.stdout
            missing = MISSING.search(output)
            if missing is None or len(built) >= 50:
                raise BuildError(
                    f"pip could not resolve the dependencies for {target} (exit {download.returncode}).\n"
                    f"{request.describe(sorted(built))}\npip said:\n{decisive(output)}"
                )
            made, origin = wheel_from_sdist(missing.group(1), output, request, scratch, cache)
            if made.name in built:
                raise BuildError(
                    f"pip could not use the wheel built here from {origin['sdist']} for {missing.group(1)}.\n"
                    f"{request.describe(sorted(built))}\npip said:\n{decisive(output)}"
                )
            shutil.copy2(made, local / made.name)
            built[made.name] = origin
        for old in out.glob("*.whl"):
            old.unlink()
        for fresh in dest.glob("*.whl"):
            shutil.move(str(fresh), out / fresh.name)
    files = {path.name: sha256_of(path) for path in sorted(out.glob("*.whl"))}
    digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
    (out / LOCK_NAME).write_text(hashed_requirements(files))
    built = {name: origin for name, origin in built.items() if name in files}
    if cache.is_dir():  # what this resolution no longer needs is built again if it comes back
        for entry in cache.iterdir():
            if entry.name not in {origin["sha256"] for origin in built.values()}:
                shutil.rmtree(entry)
    result = {"dir": str(out), "files": files, "digest": digest, "lock": LOCK_NAME, "built": built}
    remember(out, key, {**files, LOCK_NAME: sha256_of(out / LOCK_NAME)}, result)
    return result


def hashed_requirements(files: dict[str, str]) -> str:
    """A pip requirements file pinning every wheel by version and sha256, for --require-hashes."""
    lines = []
    for filename, sha256 in sorted(files.items()):
        name, version = filename.split("-")[:2]
        lines.append(f"{name}=={version} --hash=sha256:{sha256}")
    return "\n".join(lines) + "\n"


def run(command: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command with its output and errors in one stream, in the order it wrote them."""
    return subprocess.run(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False
    )


# pip, with the environment markers it evaluates replaced by the target's (Target.markers):
# `python -c PIP_FOR_TARGET MARKERS_JSON COMMAND ARGS...`.
PIP_FOR_TARGET = """
import json, runpy, sys
from pip._vendor.packaging import markers
target = json.loads(sys.argv.pop(1))
here = markers.default_environment
markers.default_environment = lambda: {**here(), **target}
sys.argv[0] = "pip"
runpy.run_module("pip", run_name="__main__", alter_sys=True)
"""


def pip(
    command: str, *args: str, env: dict[str, str] | None = None, target: Target | None = None
) -> subprocess.CompletedProcess[str]:
    prefix = ["-m", "pip"] if target is None else ["-c", PIP_FOR_TARGET, json.dumps(target.markers())]
    return run([sys.executable, *prefix, command, "--disable-pip-version-check", *args], env)


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
    house.add_argument(
        "--extra", action="append", default=[], help="an extra of the app's, with what it requires"
    )
    house.add_argument("--constraints", type=Path)
    house.add_argument(
        "--find-links",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="a directory of wheels built for the target, or of sdists, for pip besides the index",
    )
    house.add_argument("--refresh", action="store_true", help="resolve again even if nothing changed")
    digest = commands.add_parser("digest", help="one sha256 over files and trees")
    digest.add_argument("paths", nargs="+", type=Path)
    digest.add_argument("--source", type=Path, help="also the app's source tree, as its wheel is built")
    args = parser.parse_args(argv)
    try:
        if args.command == "digest":
            if args.source is not None and not args.source.is_dir():
                raise BuildError(f"{args.source}: no such directory")
            result = {"digest": paths_digest(args.paths, args.source)}
        elif args.command == "wheel":
            result = build_wheel(args.source.resolve(), args.out.resolve())
            result["extras"] = wheel_extras(Path(str(result["wheel"])))
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
                [directory.resolve() for directory in args.find_links],
                args.extra,
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
