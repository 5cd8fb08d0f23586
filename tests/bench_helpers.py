"""Misbehaving HTTP servers and in-process targets for the bench tests (loopback only, bounded in time)."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from aiohttp import web

from masssim.bench.targets import Reply
from masssim.classify.base import Labels
from masssim.classify.keyword import KeywordClassifier

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def ok_body(n: int) -> dict[str, Any]:
    return {"relevant_prob": [0.0] * n, "intent": ["other"] * n}


ROUTES: dict[str, tuple[str, tuple[Any, ...]]] = {
    "/stall-a": ("stalling_handler", (60, 0.3)),
    "/stall-b": ("stalling_handler", (60, 0.3)),
    "/hang": ("hang_handler", ()),
    "/reset": ("reset_handler", ()),
    "/garbage": ("garbage_handler", ()),
    "/schema": ("wrong_schema_handler", ()),
}


@contextmanager
def http_server() -> Iterator[str]:
    """Serve every handler of ROUTES (each POST path its own instance) on 127.0.0.1 in a separate process,
    as a real service would be (no GIL shared with the load generator); yields the base URL and stops the
    process afterwards."""
    ctx = mp.get_context("spawn")
    ports: Any = ctx.Queue()
    proc = ctx.Process(target=_serve, args=(ports,), daemon=True)
    proc.start()
    try:
        port = ports.get(timeout=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.join(5)


def _serve(ports: Any) -> None:
    async def main() -> None:
        app = web.Application()
        for path, (name, args) in ROUTES.items():
            handler = globals()[name]
            app.router.add_post(path, handler(*args) if args else handler)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        ports.put(runner.addresses[0][1])
        await asyncio.sleep(300)  # the tests never need longer; the parent terminates it first

    asyncio.run(main())


def stalling_handler(after_requests: int, stall_s: float) -> Handler:
    """Answers at once, except that from request ``after_requests`` on, every request that arrives in the
    next ``stall_s`` seconds is held until the stall ends (a pause such as a garbage collection)."""
    state = {"n": 0, "until": None}

    async def handler(request: web.Request) -> web.Response:
        data = await request.json()
        state["n"] += 1
        now = time.monotonic()
        if state["until"] is None and state["n"] >= after_requests:
            state["until"] = now + stall_s
        until = state["until"]
        if until is not None and now < until:
            await asyncio.sleep(until - now)
        return web.json_response(ok_body(len(data["texts"])))

    return handler


async def hang_handler(request: web.Request) -> web.Response:
    await asyncio.sleep(3600)
    raise AssertionError("unreachable")  # pragma: no cover


async def reset_handler(request: web.Request) -> web.Response:
    await request.read()
    assert request.transport is not None
    request.transport.abort()  # the connection dies without an answer
    await asyncio.sleep(0.5)
    return web.json_response({})  # pragma: no cover - never delivered


async def garbage_handler(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=b"}{ this is not json", content_type="application/json")


async def wrong_schema_handler(request: web.Request) -> web.Response:
    data = await request.json()
    return web.json_response({"labels": ["complaint"] * len(data["texts"])})


class QueueTarget:
    """An in-process target that behaves like one server with a fixed service time per query (M/D/1)."""

    kind = "fake"
    description = "in-process M/D/1 queue"

    def __init__(self, service_s: float) -> None:
        self.service_s = service_s
        self.busy_until = 0.0
        self.info: dict[str, Any] = {}
        self.texts_seen = 0

    async def start(self) -> None:
        self.busy_until = time.perf_counter()

    async def classify(self, texts: list[str]) -> Reply:
        now = time.perf_counter()
        start = max(now, self.busy_until)
        self.busy_until = start + self.service_s
        self.texts_seen += len(texts)
        await asyncio.sleep(self.busy_until - now)
        n = len(texts)
        return Reply(Labels(np.zeros(n), np.full(n, 5), np.zeros(n)))

    async def close(self) -> None:
        pass


class BlockingTarget(QueueTarget):
    """Blocks the generator's own event loop for ``block_s`` per query: the generator falls behind."""

    description = "in-process target that blocks the event loop"

    def __init__(self, block_s: float) -> None:
        super().__init__(0.0)
        self.block_s = block_s

    async def classify(self, texts: list[str]) -> Reply:
        time.sleep(self.block_s)
        n = len(texts)
        return Reply(Labels(np.zeros(n), np.full(n, 5), np.zeros(n)))


class PidClassifier(KeywordClassifier):
    """The keyword classifier, remembering which process it runs in (priority = pid, for the test)."""

    def classify(self, texts: Sequence[str]) -> Labels:
        labels = super().classify(texts)
        return Labels(labels.relevant_prob, labels.intent, np.full(len(texts), float(os.getpid())))


class BrokenClassifier(KeywordClassifier):
    def classify(self, texts: Sequence[str]) -> Labels:
        if len(texts) > 1 or (texts and texts[0] != "hello"):
            raise RuntimeError("the model fell over")
        return super().classify(texts)
