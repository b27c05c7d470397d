"""The import gate: the WSGI callable is loaded as Gunicorn would load it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "roles" / "release" / "files" / "gunship_release.py"

MODULE = """
def application(environ, start_response):
    return []

def create_app(name="x", debug=False):
    return application

config = {"not": "callable"}

def broken():
    raise RuntimeError("DATABASE_URL is not set")
"""


def check_import(script: Path, release: Path, spec: str, *options: str) -> subprocess.CompletedProcess[str]:
    """`script APP check-import [OPTIONS] SPEC`, run by the release's Python in the release, as the
    release role runs gunship-release on a host."""
    return subprocess.run(
        [sys.executable, str(script), "shop", "check-import", *options, spec],
        cwd=release,
        capture_output=True,
        text=True,
        check=False,
    )


def gate(tmp_path: Path, spec: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "shopapp.py").write_text(MODULE)
    return check_import(SCRIPT, tmp_path, spec)


@pytest.mark.parametrize(
    "spec",
    ["shopapp", "shopapp:application", "shopapp:create_app()", "shopapp:create_app('shop', debug=True)"],
)
def test_callables_gunicorn_would_load_pass(tmp_path: Path, spec: str) -> None:
    result = gate(tmp_path, spec)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "spec, reason",
    [
        ("nosuchmodule:app", "No module named 'nosuchmodule'"),
        ("shopapp:missing", "has no attribute 'missing'"),
        ("shopapp:broken()", "DATABASE_URL is not set"),
        ("shopapp:config", "not a WSGI callable"),
    ],
)
def test_callables_that_would_not_serve_fail_with_the_reason(tmp_path: Path, spec: str, reason: str) -> None:
    result = gate(tmp_path, spec)
    assert result.returncode == 1
    assert reason in result.stderr


def test_the_release_comes_first_on_the_path_not_the_tool(tmp_path: Path) -> None:
    """Gunicorn puts the release first on sys.path; the gate does too, not gunship-release's
    own directory (where a module of the same name would otherwise win)."""
    tool = tmp_path / "sbin"
    tool.mkdir()
    (tool / "gunship-release").write_text(SCRIPT.read_text())
    (tool / "shopapp.py").write_text("raise ImportError('the tool directory was searched first')\n")
    release = tmp_path / "release"
    release.mkdir()
    (release / "shopapp.py").write_text(MODULE)
    result = check_import(tool / "gunship-release", release, "shopapp:application")
    assert result.returncode == 0, result.stderr
