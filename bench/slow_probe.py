#!/usr/bin/env python3
"""One slow-client measurement, run on the app host itself (standard library only).

    python3 slow_probe.py --target unix:/run/gunicorn-app/blue.sock --slow 16 --seconds 8
    python3 slow_probe.py --target tcp:127.0.0.1:80 --slow 16 --seconds 8

K slow clients connect first and keep their connection busy without ever finishing a request:
half trickle a request header, half a request body, one line or byte a second. Then fast
clients GET /version for the given time, each with a 3 s limit, and the probe prints one JSON
object: fast requests answered and failed, their latency, and how many slow clients the
server hung up on. bench/slow_clients.py runs it against Gunicorn's socket and through Nginx.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import threading
import time

FAST_TIMEOUT = 3.0


def connect(target: str, timeout: float) -> socket.socket:
    kind, _, where = target.partition(":")
    if kind == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(where)
    else:
        host, _, port = where.rpartition(":")
        sock = socket.create_connection((host, int(port)), timeout=timeout)
    return sock


def slow_client(target: str, host: str, body: bool, stop: threading.Event, closed: list[int]) -> None:
    """Start a request and never finish it: a header line, or a body byte, each second."""
    try:
        sock = connect(target, 5)
        if body:
            sock.sendall(f"POST /version HTTP/1.1\r\nHost: {host}\r\nContent-Length: 100000\r\n\r\n".encode())
        else:
            sock.sendall(f"GET /version HTTP/1.1\r\nHost: {host}\r\n".encode())
        while not stop.wait(1.0):
            sock.sendall(b"x" if body else b"X-Slow: 1\r\n")
        sock.close()
    except OSError:
        closed.append(1)  # the server gave up on us (a timeout, a 408, a reset)


def fast_client(target: str, host: str, until: float, latencies: list[float], failures: list[str]) -> None:
    request = f"GET /version HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    while time.monotonic() < until:
        started = time.perf_counter()
        try:
            sock = connect(target, FAST_TIMEOUT)
            sock.settimeout(max(0.1, FAST_TIMEOUT - (time.perf_counter() - started)))
            sock.sendall(request)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
            sock.close()
            status = answer.split(b" ", 2)[1] if answer.startswith(b"HTTP/") else b"none"
            if status == b"200":
                latencies.append(time.perf_counter() - started)
            else:
                failures.append(status.decode(errors="replace"))
        except OSError as error:
            failures.append(type(error).__name__)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="unix:PATH or tcp:HOST:PORT")
    parser.add_argument("--host-header", default="localhost")
    parser.add_argument("--slow", type=int, default=16, help="slow clients held open")
    parser.add_argument("--fast", type=int, default=2, help="fast clients in parallel")
    parser.add_argument("--seconds", type=float, default=8.0, help="how long the fast clients run")
    args = parser.parse_args()

    stop = threading.Event()
    closed: list[int] = []
    slow = [
        threading.Thread(target=slow_client, args=(args.target, args.host_header, i % 2 == 1, stop, closed))
        for i in range(args.slow)
    ]
    for thread in slow:
        thread.start()
    time.sleep(1.5 if args.slow else 0)  # let them take what they can take

    latencies: list[float] = []
    failures: list[str] = []
    until = time.monotonic() + args.seconds
    fast = [
        threading.Thread(target=fast_client, args=(args.target, args.host_header, until, latencies, failures))
        for _ in range(args.fast)
    ]
    for thread in fast:
        thread.start()
    for thread in fast:
        thread.join()
    stop.set()
    for thread in slow:
        thread.join(timeout=10)

    ordered = sorted(latencies)
    total = len(latencies) + len(failures)
    print(
        json.dumps(
            {
                "target": args.target,
                "slow": args.slow,
                "answered": len(latencies),
                "failed": len(failures),
                "success_rate": len(latencies) / total if total else 0.0,
                "failures": sorted(set(failures)),
                "p50_ms": statistics.median(ordered) * 1000 if ordered else None,
                "p99_ms": ordered[int(0.99 * (len(ordered) - 1))] * 1000 if ordered else None,
                "slow_dropped_by_server": len(closed),
            }
        )
    )


if __name__ == "__main__":
    main()
