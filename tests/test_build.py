"""The control node's artifact: a reproducible wheel and a wheelhouse for the target's
Python and platform, which hosts install with --no-index --require-hashes."""

from __future__ import annotations

import importlib.util
import json
import platform
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
SCRIPT = PROJECT / "roles" / "release" / "files" / "gunship_build.py"
EXAMPLE = PROJECT / "examples" / "flaskapp"
SDISTS = Path(__file__).resolve().parent / "data" / "sdists"
# This machine as the target, so that the wheelhouse can be installed here.
HERE = ["--python", "{}.{}".format(*sys.version_info[:2]), "--machine", platform.machine()]
HERE += ["--glibc", platform.libc_ver()[1]]
# A Debian 13 host on x86_64 as the target, whatever Python runs the build.
TRIXIE = ["--python", "3.13", "--machine", "x86_64", "--glibc", "2.41"]

spec = importlib.util.spec_from_file_location("gunship_build", SCRIPT)
assert spec and spec.loader
gunship_build = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gunship_build)


def run(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, SCRIPT, *map(str, args)], capture_output=True, text=True, check=False
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> dict:
    result = run("wheel", EXAMPLE, tmp_path_factory.mktemp("dist"))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_wheel_names_the_package_and_its_modules(wheel: dict) -> None:
    assert (wheel["name"], wheel["version"]) == ("gunship-example", "1.0.0")
    assert wheel["modules"] == ["gunship_example"]
    with zipfile.ZipFile(wheel["wheel"]) as archive:
        assert "gunship_example/static/style.css" in archive.namelist()


def test_same_source_builds_the_same_wheel(wheel: dict, tmp_path: Path) -> None:
    again = json.loads(run("wheel", EXAMPLE, tmp_path).stdout)
    assert again["sha256"] == wheel["sha256"]


def test_stale_build_output_in_the_source_tree_never_reaches_the_wheel(tmp_path: Path) -> None:
    source = tmp_path / "src"
    subprocess.run(["cp", "-r", EXAMPLE, source], check=True)
    stale = source / "build" / "lib" / "gunship_example"
    stale.mkdir(parents=True)
    (stale / "deleted_module.py").write_text("raise SystemExit('stale')\n")
    built = json.loads(run("wheel", source, tmp_path / "dist").stdout)
    with zipfile.ZipFile(built["wheel"]) as archive:
        assert not [n for n in archive.namelist() if "deleted_module" in n]


def test_the_source_digest_changes_with_what_the_wheel_is_built_from_only(tmp_path: Path) -> None:
    """A deploy's fingerprint reads the source as the build copies it: a changed module counts, a
    cache, a venv or a stale build directory does not."""
    source = tmp_path / "app"
    (source / "app").mkdir(parents=True)
    (source / "pyproject.toml").write_text("[project]\nname = 'app'\nversion = '1'\n")
    (source / "app" / "__init__.py").write_text("VALUE = 1\n")

    def digest() -> str:
        result = run("digest", tmp_path / "none", "--source", source)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)["digest"]

    first = digest()
    for ignored in ("__pycache__", ".venv", "build", ".git"):
        (source / ignored).mkdir()
        (source / ignored / "junk").write_text("x")
    assert digest() == first
    (source / "app" / "__init__.py").write_text("VALUE = 2\n")
    assert digest() != first


def test_a_directory_that_is_no_python_project_is_refused(tmp_path: Path) -> None:
    result = run("wheel", tmp_path, tmp_path / "dist")
    assert result.returncode == 1
    assert "neither pyproject.toml nor setup.py" in result.stderr


def test_a_failure_is_reported_on_stdout_for_a_lookup(tmp_path: Path) -> None:
    result = run("--errors-as-json", "wheel", tmp_path, tmp_path / "dist")
    assert result.returncode == 0
    assert "neither pyproject.toml nor setup.py" in json.loads(result.stdout)["error"]


@pytest.mark.parametrize(
    "glibc, expected_first, expected_last",
    [("2.36", "manylinux_2_36_x86_64", "linux_x86_64"), ("2.17", "manylinux_2_17_x86_64", "linux_x86_64")],
)
def test_platforms_cover_every_older_manylinux(glibc: str, expected_first: str, expected_last: str) -> None:
    tags = gunship_build.pip_platforms("x86_64", glibc)
    assert tags[0] == expected_first and tags[-1] == expected_last
    assert "manylinux2014_x86_64" in tags and "manylinux_2_5_x86_64" in tags
    assert "manylinux_2_37_x86_64" not in tags


def test_musl_or_unknown_libc_is_refused() -> None:
    with pytest.raises(gunship_build.BuildError, match="unsupported glibc"):
        gunship_build.pip_platforms("x86_64", "musl")


def test_wheelhouse_targets_the_hosts_python_not_the_control_nodes(wheel: dict, tmp_path: Path) -> None:
    result = run("wheelhouse", wheel["wheel"], tmp_path, *TRIXIE, "--requirement", "gunicorn>=23,<28")
    assert result.returncode == 0, result.stderr
    house = json.loads(result.stdout)
    names = set(house["files"])
    assert any(n.startswith("gunicorn-") for n in names)
    assert any(n.startswith("gunship_example-1.0.0-") for n in names)
    # MarkupSafe has compiled wheels: the one for CPython 3.13 on glibc, whatever runs here.
    markupsafe = [n for n in names if n.startswith("markupsafe-")]
    assert len(markupsafe) == 1 and "-cp313-cp313-" in markupsafe[0] and "manylinux" in markupsafe[0]
    lock = (tmp_path / house["lock"]).read_text().splitlines()
    assert len(lock) == len(names)
    assert all(" --hash=sha256:" in line for line in lock)


def test_dependencies_are_chosen_by_the_hosts_markers_not_the_control_nodes(
    wheel: dict, tmp_path: Path
) -> None:
    """A dependency's environment markers are the host's: CPython 3.13 needs legacy-cgi (cgi left
    the standard library) and not importlib-resources' backport, whatever Python runs the build."""
    result = run(
        "wheelhouse",
        wheel["wheel"],
        tmp_path,
        *TRIXIE,
        "--requirement",
        'legacy-cgi>=2.6.4; python_full_version >= "3.13"',
        "--requirement",
        'importlib-resources>=6.5.2; python_version < "3.12"',
    )
    assert result.returncode == 0, result.stderr
    names = set(json.loads(result.stdout)["files"])
    assert any(n.startswith("legacy_cgi-") for n in names), names
    assert not any(n.startswith("importlib_resources-") for n in names), names


def test_wheelhouse_holds_only_the_latest_resolution(wheel: dict, tmp_path: Path) -> None:
    args = [
        "wheelhouse",
        wheel["wheel"],
        tmp_path,
        "--python",
        "3.11",
        "--machine",
        "x86_64",
        "--glibc",
        "2.36",
    ]
    first = json.loads(run(*args, "--requirement", "gevent").stdout)
    second = json.loads(run(*args).stdout)
    assert any(n.startswith("gevent-") for n in first["files"])
    assert not any(n.startswith("gevent-") for n in second["files"])
    assert sorted(p.name for p in tmp_path.glob("*.whl")) == sorted(second["files"])
    assert first["digest"] != second["digest"]


def test_unchanged_source_gives_back_the_built_wheel_and_a_change_builds_anew(tmp_path: Path) -> None:
    source = tmp_path / "src"
    subprocess.run(["cp", "-r", EXAMPLE, source], check=True)
    dist = tmp_path / "dist"
    first = json.loads(run("wheel", source, dist).stdout)
    built_at = Path(first["wheel"]).stat().st_mtime_ns

    again = json.loads(run("wheel", source, dist).stdout)
    assert again == first and Path(again["wheel"]).stat().st_mtime_ns == built_at

    module = source / "src" / "gunship_example" / "__init__.py"
    module.write_text(module.read_text() + "\n# changed\n")
    changed = json.loads(run("wheel", source, dist).stdout)
    assert changed["sha256"] != first["sha256"]
    assert sorted(p.name for p in dist.glob("*.whl")) == [Path(changed["wheel"]).name]


def test_a_tampered_wheel_is_built_again_not_reused(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    first = json.loads(run("wheel", EXAMPLE, dist).stdout)
    Path(first["wheel"]).write_bytes(b"not a wheel")
    again = json.loads(run("wheel", EXAMPLE, dist).stdout)
    assert again["sha256"] == first["sha256"] == gunship_build.sha256_of(Path(again["wheel"]))


def test_the_same_inputs_give_back_the_wheelhouse_and_refresh_resolves_again(
    wheel: dict, tmp_path: Path
) -> None:
    args = ["wheelhouse", wheel["wheel"], tmp_path / "house", *TRIXIE, "--requirement", "gunicorn>=23,<28"]
    first = json.loads(run(*args).stdout)
    mtimes = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "house").iterdir()}

    again = json.loads(run(*args).stdout)
    assert again == first
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "house").iterdir()} == mtimes
    # Nothing but the wheels and their lock is in the directory copied to hosts.
    assert sorted(mtimes) == sorted([*first["files"], first["lock"]])

    refreshed = json.loads(run(*args, "--refresh").stdout)
    assert refreshed["files"] == first["files"]
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "house").iterdir()} != mtimes


def test_a_pip_failure_says_what_gunship_asked_for_and_what_pip_said(wheel: dict, tmp_path: Path) -> None:
    result = run("wheelhouse", wheel["wheel"], tmp_path, *HERE, "--requirement", "flask<2")
    assert result.returncode == 1
    assert "--only-binary=:all:" in result.stderr and "flask<2" in result.stderr
    assert "CPython {}.{} on".format(*sys.version_info[:2]) in result.stderr
    # pip's own explanation, not only its last line.
    assert "The conflict is caused by:" in result.stderr and "ResolutionImpossible" in result.stderr


@pytest.mark.parametrize(
    "name, pure",
    [
        ("docopt-0.6.2-py2.py3-none-any.whl", True),
        ("flask-3.1.3-py3-none-any.whl", True),
        ("speedups-1.0-cp311-cp311-linux_x86_64.whl", False),
        ("legacy-1.0-py2-none-any.whl", False),
        ("fast-1.0-cp311-none-any.whl", False),
    ],
)
def test_only_a_pure_python_3_wheel_built_from_an_sdist_is_accepted(name: str, pure: bool) -> None:
    assert gunship_build.is_pure(name) is pure


@pytest.fixture(scope="module")
def docopt_house(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], dict]:
    """The wheelhouse of an app whose dependency, docopt 0.6.2, is published only as an sdist."""
    built = run("wheel", SDISTS / "docopt-app", tmp_path_factory.mktemp("dist"))
    assert built.returncode == 0, built.stderr
    args = ["wheelhouse", json.loads(built.stdout)["wheel"], tmp_path_factory.mktemp("house"), *HERE]
    result = run(*args)
    assert result.returncode == 0, result.stderr
    return args, json.loads(result.stdout)


def test_an_sdist_only_dependency_enters_the_wheelhouse_as_a_pure_wheel(docopt_house) -> None:
    _, house = docopt_house
    assert house["built"]["docopt-0.6.2-py2.py3-none-any.whl"]["sdist"] == "docopt-0.6.2.tar.gz"
    wheel = Path(house["dir"]) / "docopt-0.6.2-py2.py3-none-any.whl"
    lock = (Path(house["dir"]) / house["lock"]).read_text().splitlines()
    assert f"docopt==0.6.2 --hash=sha256:{gunship_build.sha256_of(wheel)}" in lock


def test_a_host_installs_the_built_wheel_offline_by_hash(docopt_house, tmp_path: Path) -> None:
    _, house = docopt_house
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    # The same flags as a host's install; this pip installs into the fresh venv.
    offline = ["--no-index", "--no-cache-dir", "--require-hashes", "--find-links", house["dir"]]
    offline += ["--requirement", Path(house["dir"]) / house["lock"]]
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", *offline],
        capture_output=True,
        text=True,
        check=False,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    served = subprocess.run(
        [venv / "bin" / "python", "-c", "import gunship_docopt_app as a; print(a.application({}, print))"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "'--verbose': False" in served.stdout, served.stderr


def test_a_wheelhouse_with_a_built_wheel_is_reused_and_refreshed_to_the_same_digest(docopt_house) -> None:
    args, house = docopt_house
    mtimes = {p.name: p.stat().st_mtime_ns for p in Path(house["dir"]).iterdir()}
    again = json.loads(run(*args).stdout)
    assert again == house
    assert {p.name: p.stat().st_mtime_ns for p in Path(house["dir"]).iterdir()} == mtimes
    refreshed = json.loads(run(*args, "--refresh").stdout)
    assert refreshed["digest"] == house["digest"]


def test_an_sdist_that_compiles_code_is_refused_with_the_ways_out(wheel: dict, tmp_path: Path) -> None:
    links = tmp_path / "links"
    links.mkdir()
    with tarfile.open(links / "gunship_test_speedups-1.0.tar.gz", "w:gz") as sdist:
        sdist.add(SDISTS / "speedups", "gunship_test_speedups-1.0")
    house = tmp_path / "house"
    args = ["wheelhouse", wheel["wheel"], house, *TRIXIE]
    args += ["--requirement", "gunship-test-speedups==1.0", "--find-links", links]
    result = run("--errors-as-json", *args)
    error = json.loads(result.stdout)["error"]
    target = "CPython 3.13 on x86_64 with glibc 2.41"
    assert error.startswith(f"gunship-test-speedups 1.0 has no wheel for {target}")
    # Without a C compiler the build fails instead: refused all the same, with the same ways out.
    assert re.search(r"compiles code: built here it gives \S+-linux_\w+\.whl|did not build", error)
    assert "publish a wheel of gunship-test-speedups==1.0 for the target (tags cp313, abi3" in error
    assert "manylinux_2_41_x86_64" in error
    assert "pip wheel --no-deps gunship-test-speedups==1.0" in error and "release_find_links" in error
    assert not (house / "requirements.lock").exists()


def test_an_extra_of_the_app_brings_what_it_requires_into_the_wheelhouse(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "extras_app").mkdir(parents=True)
    (source / "extras_app" / "__init__.py").write_text("application = None\n")
    (source / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "extras-app"\nversion = "1.0"\n'
        '[project.optional-dependencies]\nserver = ["itsdangerous>=2"]\n'
    )
    built = run("wheel", source, tmp_path / "dist")
    assert built.returncode == 0, built.stderr
    wheel = json.loads(built.stdout)
    assert wheel["extras"] == ["server"]
    plain = json.loads(run("wheelhouse", wheel["wheel"], tmp_path / "plain", *TRIXIE).stdout)
    assert not any(name.startswith("itsdangerous-") for name in plain["files"]), plain
    result = run("wheelhouse", wheel["wheel"], tmp_path / "server", *TRIXIE, "--extra", "server")
    assert result.returncode == 0, result.stderr
    house = json.loads(result.stdout)
    assert any(name.startswith("itsdangerous-") for name in house["files"]), house
    assert any(name.startswith("extras_app-1.0-") for name in house["files"]), house
