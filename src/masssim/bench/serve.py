"""``masssim serve``: any registered classifier over HTTP on 127.0.0.1 (aiohttp), for demos and benchmarks.

Endpoints:

* ``POST /classify`` — request ``{"texts": [...]}``, response ``{"relevant_prob": [...], "intent": [...],
  "priority": [...]}`` (the schema in :mod:`masssim.bench.targets`). A body over ``max_request_bytes`` gets
  413, more than ``max_texts`` texts 413, a body that is not JSON (nested too deeply included) or not the
  schema 400, each with ``{"error": "..."}``. Only the classifier's own failure is a 500.
* ``GET /health`` — ``{"status": "ok", "classifier": NAME, "fitted_on": N}``.

A trainable classifier is fitted at start on a synthetic training corpus (half needles) drawn from
``seed``. Classification runs on the server's event loop, one request at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import Callable
from typing import Any

import numpy as np
from aiohttp import web

from masssim.bench.corpus import training_set
from masssim.bench.targets import labels_json
from masssim.classify.base import Classifier
from masssim.classify.registry import build_classifier
from masssim.config.errors import ScenarioError

HOST = "127.0.0.1"
DEFAULT_MAX_REQUEST_BYTES = 1 << 20
DEFAULT_MAX_TEXTS = 10_000


def load_classifier(
    name: str, params: dict[str, Any] | None = None, *, training_messages: int = 5000, seed: int | None = 0
) -> tuple[Classifier, int]:
    """Build ``name`` and fit it if it learns; ScenarioError (exit 2) for an unknown name or bad parameters."""
    try:
        classifier = build_classifier(name, params or {})
    except (LookupError, ValueError, TypeError) as exc:
        raise ScenarioError(str(exc), file="masssim serve", field="--classifier", value=name) from None
    fitted = 0
    fit = getattr(classifier, "fit", None)
    if training_messages > 0 and callable(fit):
        texts, relevant, intent = training_set(np.random.SeedSequence(seed), training_messages)
        fit(texts, relevant, intent)
        fitted = training_messages
    return classifier, fitted


def build_app(
    classifier: Classifier,
    *,
    name: str,
    fitted_on: int = 0,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    max_texts: int = DEFAULT_MAX_TEXTS,
) -> web.Application:
    def error(status: int, message: str) -> web.Response:
        return web.json_response({"error": message}, status=status)

    async def classify(request: web.Request) -> web.Response:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return error(413, f"the request is larger than {max_request_bytes} bytes")
        try:
            data = json.loads(body)
        except (ValueError, RecursionError) as exc:
            # ValueError covers JSONDecodeError, UnicodeDecodeError and over-long integers; the json module decodes
            # nested arrays recursively, so a deep body is bad input too, not a crash.
            what = "nested too deeply" if isinstance(exc, RecursionError) else "not JSON"
            return error(400, f"the body is {what}")
        texts = data.get("texts") if isinstance(data, dict) else None
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            return error(400, 'expected {"texts": ["...", ...]}')
        if len(texts) > max_texts:
            return error(413, f"{len(texts)} texts in one request; at most {max_texts}")
        try:
            labels = classifier.classify(texts)
        except Exception as exc:  # the classifier's own failure: the client sees a 500 with the reason
            return error(500, f"{type(exc).__name__}: {exc}")
        return web.json_response(labels_json(labels))

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "classifier": name, "fitted_on": fitted_on})

    app = web.Application(client_max_size=max_request_bytes)
    app.router.add_post("/classify", classify)
    app.router.add_get("/health", health)
    return app


async def start_server(app: web.Application, port: int) -> tuple[web.AppRunner, int]:
    """Listen on 127.0.0.1:``port`` (0 = any free port); returns the runner and the port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, HOST, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise ScenarioError(
            f"cannot listen on {HOST}:{port} ({exc.strerror})", file="masssim serve", field="--port", value=port
        ) from None
    addresses = runner.addresses
    bound = addresses[0][1] if addresses else port
    return runner, int(bound)


def serve(
    name: str = "keyword",
    *,
    params: dict[str, Any] | None = None,
    port: int = 8080,
    training_messages: int = 5000,
    seed: int | None = 0,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    max_texts: int = DEFAULT_MAX_TEXTS,
    announce: Callable[[str], None] = print,
    duration_s: float | None = None,
) -> None:
    """Serve until interrupted (SIGINT/SIGTERM) or for ``duration_s`` seconds."""
    classifier, fitted = load_classifier(name, params, training_messages=training_messages, seed=seed)
    app = build_app(classifier, name=name, fitted_on=fitted, max_request_bytes=max_request_bytes, max_texts=max_texts)

    async def main() -> None:
        runner, bound = await start_server(app, port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        fit_note = f", fitted on {fitted} synthetic messages" if fitted else ""
        announce(
            f"masssim serve: {name}{fit_note} on http://{HOST}:{bound}/classify "
            f"(max request {max_request_bytes} bytes, {max_texts} texts)"
        )
        try:
            if duration_s is None:
                await stop.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), duration_s)
        finally:
            await runner.cleanup()

    asyncio.run(main())
