"""Reading a Server-Sent Events response from the in-process app: httpx's ASGITransport waits
for a response to end, and a live feed never does, so this drives the ASGI app directly and
disconnects (as a client closing the connection) once it has read what it came for."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import anyio
from fastapi import FastAPI


@dataclass
class Message:
    id: str | None
    data: str


def parse(text: str) -> tuple[list[Message], list[str]]:
    """The messages and comment lines (heartbeats) of an SSE body; a trailing partial frame is left out."""
    messages, comments = [], []
    for frame in text.replace("\r\n", "\n").split("\n\n")[:-1]:
        id_, data = None, []
        for line in frame.split("\n"):
            if line.startswith(":"):
                comments.append(line[1:].strip())
            elif line.startswith("id:"):
                id_ = line[3:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
        if data:
            messages.append(Message(id_, "\n".join(data)))
    return messages, comments


async def read_sse(app: FastAPI, path: str, auth: tuple[str, str] | None, count: int | None,
                   params: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
                   timeout: float = 20.0) -> tuple[int, list[Message]]:
    """GET `path` and read until `count` messages arrived (None: until the response ends);
    returns the status and the messages. Fails after `timeout` seconds (a bound, not a wait)."""
    query = "&".join(f"{k}={v}" for k, v in (params or {}).items())
    raw_headers = [(b"host", b"dockyard.test"), (b"accept", b"text/event-stream")]
    if auth is not None:
        raw_headers.append((b"authorization", b"Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode())))
    for k, v in (headers or {}).items():
        raw_headers.append((k.lower().encode(), v.encode()))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
             "headers": raw_headers, "client": ("127.0.0.1", 5000), "server": ("dockyard.test", 80)}
    done = anyio.Event()
    state: dict[str, Any] = {"status": 0, "body": b"", "sent_request": False}

    async def receive() -> dict[str, Any]:
        if not state["sent_request"]:
            state["sent_request"] = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            state["status"] = message["status"]
        elif message["type"] == "http.response.body":
            state["body"] += message.get("body", b"")
            got, _ = parse(state["body"].decode())
            if (count is not None and len(got) >= count) or not message.get("more_body", False):
                done.set()

    with anyio.fail_after(timeout):
        async with anyio.create_task_group() as tg:
            tg.start_soon(app, scope, receive, send)
            await done.wait()
            tg.cancel_scope.cancel()
    return state["status"], parse(state["body"].decode())[0]
