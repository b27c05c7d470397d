"""Gunship's example ASGI app: what an async app has that a WSGI one does not.

- `/` a page with a stylesheet (static, served by Nginx), `/healthz`, `/version`;
- `/io?seconds=S` waits without holding a thread, as a call to a slow upstream does;
- `/events?count=N&interval=S` a server-sent-events stream, one event per interval;
- `/ws` a websocket: greets with the release that serves it, then echoes every message;
- `/fail` raises, as a bug would: the 500 a user sees, and the traceback the log should hold.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from importlib.metadata import version

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

__all__ = ["app", "create_app"]

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Gunship ASGI example</title>
  <link rel="stylesheet" href="/static/style.css">
</head>
<body>
  <h1>Gunship ASGI example</h1>
  <p>Version <span id="version">{version}</span>,
     release <span id="release">{release}</span>,
     served by <span id="host">{host}</span>.</p>
  <p>Try <code>/events</code> and the websocket at <code>/ws</code>.</p>
</body>
</html>
"""

# Bounds keep one request from holding a connection longer than the demonstrations need.
IO_MAX_SECONDS = 30.0
EVENTS_MAX = 1000
INTERVAL_MAX = 60.0


def release_id() -> str:
    # Gunship's app server config exports the live release's id; a dev server has none.
    return os.environ.get("GUNSHIP_RELEASE_ID", "dev")


def bounded(request: Request, name: str, default: float, upper: float) -> float:
    raw = request.query_params.get(name, str(default))
    try:
        value = float(raw)
    except ValueError:
        raise HTTPException(400, f"{name} must be a number, got {raw!r}") from None
    if not 0 <= value <= upper:
        raise HTTPException(400, f"{name} must be between 0 and {upper}, got {value}")
    return value


def create_app() -> Starlette:
    package_version = version("gunship-asgi-example")

    def identity() -> dict[str, str]:
        return {"version": package_version, "release": release_id(), "host": socket.gethostname()}

    async def index(request: Request) -> HTMLResponse:
        return HTMLResponse(PAGE.format(**identity()))

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def version_info(request: Request) -> JSONResponse:
        return JSONResponse(identity())

    async def io(request: Request) -> JSONResponse:
        seconds = bounded(request, "seconds", 1.0, IO_MAX_SECONDS)
        await asyncio.sleep(seconds)
        return JSONResponse({"slept": seconds})

    async def events(request: Request) -> StreamingResponse:
        count = int(bounded(request, "count", 5, EVENTS_MAX))
        interval = bounded(request, "interval", 1.0, INTERVAL_MAX)

        async def stream() -> AsyncIterator[str]:
            for number in range(1, count + 1):
                yield f"id: {number}\nevent: tick\ndata: {number} {release_id()}\n\n"
                if number < count:
                    await asyncio.sleep(interval)

        # No cache, and no buffering by a proxy: each event reaches the client when it is sent.
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    async def fail(request: Request) -> JSONResponse:
        raise RuntimeError("the example's deliberate failure (GET /fail)")

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(f"hello from {release_id()}")
        try:
            while True:
                await websocket.send_text(await websocket.receive_text())
        except WebSocketDisconnect:
            pass

    return Starlette(
        routes=[
            Route("/", index),
            Route("/healthz", healthz),
            Route("/version", version_info),
            Route("/io", io),
            Route("/events", events),
            Route("/fail", fail),
            WebSocketRoute("/ws", echo),
        ]
    )


app = create_app()
