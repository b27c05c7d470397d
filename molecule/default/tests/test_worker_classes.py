"""Worker classes for apps that wait on I/O: gthread runs threads in each worker, gevent
is installed into the release's venv and serves from green threads; under uWSGI, threads in
each worker process."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import testinfra
from conftest import PORTS, ROOT, app_log_mark, app_log_since, deploy, fetch
from gunship_testkit import UWSGI


@pytest.fixture(scope="module")
def nodes() -> dict[str, testinfra.host.Host]:
    return {name: testinfra.get_host(f"podman://{name}") for name in PORTS}


def overlapping_waits(name: str, count: int) -> list[int]:
    with ThreadPoolExecutor(max_workers=count) as pool:
        return [a.status for a in pool.map(lambda _: fetch(name, "/io?seconds=0.5"), range(count))]


@pytest.mark.parametrize(
    "settings, worker_log, module",
    [({"uwsgi_threads": 4}, "cores: 4)", None)]
    if UWSGI
    else [
        ({"gunicorn_worker_class": "gthread", "gunicorn_threads": 4}, "Using worker: gthread", None),
        ({"gunicorn_worker_class": "gevent"}, "Using worker: gevent", "gevent"),
    ],
    ids=["threads"] if UWSGI else ["gthread", "gevent"],
)
def test_io_worker_class_serves_concurrent_waits(
    nodes, settings: dict, worker_log: str, module: str | None
) -> None:
    started = {name: app_log_mark(node) for name, node in nodes.items()}
    run = deploy("--extra-vars", json.dumps(settings))
    assert run.returncode == 0, run.stdout + run.stderr
    for name, node in nodes.items():
        assert worker_log in app_log_since(node, started[name])
        if module:
            assert node.run(f"{ROOT}/current/venv/bin/python -c 'import {module}'").succeeded
        # Twelve overlapping waits, more than the five workers: every one is answered.
        assert overlapping_waits(name, 12) == [200] * 12


def test_back_to_sync_workers(nodes) -> None:
    run = deploy()
    assert run.returncode == 0, run.stdout + run.stderr
    for node in nodes.values():
        if UWSGI:
            conf = node.file("/etc/gunship/gunship-example/uwsgi.ini").content_string
            assert "threads = 1" in conf.splitlines()
            continue
        conf = node.file("/etc/gunship/gunship-example/gunicorn.conf.py").content_string
        assert 'worker_class = "sync"' in conf
        assert node.run(f"{ROOT}/current/venv/bin/python -c 'import gevent'").rc != 0
