"""The import gate: the WSGI callable is loaded as Gunicorn would load it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "roles" / "release" / "files" / "gunship_import_check.py"

MODULE = """
def application(environ, start_response):
    return []

def create_app(name="x", debug=False):
    return application

config = {"not": "callable"}

def broken():
    raise RuntimeError("DATABASE_URL is not set")
"""


def gate(tmp_path: Path, spec: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "shopapp.py").write_text(MODULE)
    # Fed on stdin, as the release role does on a host.
    return subprocess.run(
        [sys.executable, "-", spec],
        input=SCRIPT.read_text(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )


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
