"""Gunship's example WSGI app: a page with a stylesheet, a health check, and two load routes.

`/cpu` and `/io` are the two halves of the classic development-server-versus-Gunicorn
comparison: one burns CPU, the other waits the way a call to a slow upstream does.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from importlib.metadata import version

from flask import Flask, Response, abort, jsonify, render_template_string, request

__all__ = ["create_app"]

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Gunship example</title>
  <link rel="stylesheet" href="{{ url_for('static', filename='style.css') }}">
</head>
<body>
  <h1>Gunship example</h1>
  <p>Version <span id="version">{{ version }}</span>,
     release <span id="release">{{ release }}</span>,
     served by <span id="host">{{ host }}</span>.</p>
</body>
</html>
"""

# Bounds keep one request from tying up a worker for longer than the load routes need.
CPU_MAX_ROUNDS = 5_000_000
IO_MAX_SECONDS = 30.0


def _bounded_number(name: str, default: float, upper: float, kind: type = float) -> float:
    raw = request.args.get(name, default)
    try:
        value = kind(raw)
    except (TypeError, ValueError):
        abort(400, f"{name} must be a number, got {raw!r}")
    if not 0 <= value <= upper:
        abort(400, f"{name} must be between 0 and {upper}, got {value}")
    return value


def create_app() -> Flask:
    app = Flask(__name__)
    package_version = version("gunship-example")

    def release_id() -> str:
        # Gunship's gunicorn.conf.py exports the live release's id; a dev server has none.
        return os.environ.get("GUNSHIP_RELEASE_ID", "dev")

    @app.get("/")
    def index() -> str:
        return render_template_string(
            PAGE, version=package_version, release=release_id(), host=socket.gethostname()
        )

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok")

    @app.get("/version")
    def version_info() -> Response:
        return jsonify(version=package_version, release=release_id(), host=socket.gethostname())

    @app.get("/cpu")
    def cpu() -> Response:
        rounds = int(_bounded_number("rounds", 200_000, CPU_MAX_ROUNDS, int))
        started = time.perf_counter()
        digest = b"gunship"
        for _ in range(rounds):
            digest = hashlib.sha256(digest).digest()
        return jsonify(rounds=rounds, digest=digest.hex(), seconds=time.perf_counter() - started)

    @app.get("/io")
    def io() -> Response:
        seconds = _bounded_number("seconds", 1.0, IO_MAX_SECONDS)
        time.sleep(seconds)
        return jsonify(slept=seconds)

    return app
