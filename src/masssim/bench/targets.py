"""What a benchmark talks to: a classifier in a worker process (``python:``) or a service over HTTP.

Every target has one verb, ``await target.classify(texts) -> Reply``, which either returns labels for all
texts or raises :class:`TargetFailure` with a kind: ``timeout``, ``connection`` (refused, reset, closed),
``http_status`` (not 200), ``bad_response`` (not JSON, or not the schema) or ``worker`` (the classifier
raised, or its process died). The runner counts each failure; none is dropped.

Problems known before the run starts (a malformed target, a classifier that cannot be built, nothing
listening at the address) raise :class:`~masssim.config.errors.ScenarioError` instead: bad input, exit status 2.

HTTP schema (``POST`` to the target URL, ``Content-Type: application/json``)::

    request   {"texts": ["first message", "second message"]}
    response  {"relevant_prob": [0.93, 0.02], "intent": ["complaint", "other"], "priority": [0.93, 0.002]}

``relevant_prob``: numbers in [0, 1], one per text. ``intent``: one per text, a name (complaint, support,
purchase, question, praise, other) or its code 0-5. ``priority`` is optional (numbers; default relevance
probability times the intent's weight). Any other status than 200 is a failure; extra keys are ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import multiprocessing as mp
import queue
import threading
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from masssim.classify.base import INTENT_NAMES, Labels, priority_from
from masssim.config.errors import ScenarioError

FAILURE_KINDS: tuple[str, ...] = ("timeout", "connection", "http_status", "bad_response", "worker")
WHERE = "masssim bench"


class TargetFailure(Exception):
    """One query that got no usable answer."""

    def __init__(self, kind: str, detail: str) -> None:
        assert kind in FAILURE_KINDS
        self.kind = kind
        self.detail = detail
        super().__init__(f"{kind}: {detail}")


@dataclass
class Reply:
    labels: Labels
    service_s: float | None = None  # the classifier's own time (python targets), else None


class Target(Protocol):
    kind: str
    description: str

    async def start(self) -> None: ...

    async def classify(self, texts: list[str]) -> Reply: ...

    async def close(self) -> None: ...


# --------------------------------------------------------------------------------------------------
# Response schema
# --------------------------------------------------------------------------------------------------

_INTENT_CODE = {name: code for code, name in enumerate(INTENT_NAMES)}


def parse_reply(body: bytes, n: int) -> Labels:
    """Labels from a response body, or TargetFailure('bad_response') saying what is wrong."""
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        preview = body[:40].decode("utf-8", "replace")
        raise TargetFailure("bad_response", f"the body is not JSON ({preview!r})") from None
    if not isinstance(obj, dict):
        raise TargetFailure("bad_response", f"wrong schema: expected a JSON object, got {type(obj).__name__}")
    for key in ("relevant_prob", "intent"):
        if key not in obj:
            raise TargetFailure("bad_response", f"wrong schema: no {key!r} (keys: {sorted(obj)[:5]})")
    prob = _numbers(obj, "relevant_prob", n)
    if prob.size and (prob.min() < 0 or prob.max() > 1):
        raise TargetFailure("bad_response", "wrong schema: relevant_prob must be in [0, 1]")
    raw_intent = obj["intent"]
    if not isinstance(raw_intent, list) or len(raw_intent) != n:
        raise TargetFailure("bad_response", f"wrong schema: intent must be a list of {n}")
    try:
        intent = np.array(
            [_INTENT_CODE[v] if isinstance(v, str) else _intent_code(v) for v in raw_intent], dtype=np.int8
        )
    except (KeyError, ValueError):
        raise TargetFailure(
            "bad_response", f"wrong schema: intent must be names ({', '.join(INTENT_NAMES)}) or codes 0-5"
        ) from None
    priority = _numbers(obj, "priority", n) if obj.get("priority") is not None else priority_from(prob, intent)
    return Labels(prob, intent, priority)


def _intent_code(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < len(INTENT_NAMES):
        raise ValueError(value)
    return value


def _numbers(obj: dict[str, Any], key: str, n: int) -> np.ndarray:
    values = obj[key]
    if (
        not isinstance(values, list)
        or len(values) != n
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    ):
        raise TargetFailure("bad_response", f"wrong schema: {key} must be a list of {n} numbers")
    arr = np.asarray(values, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise TargetFailure("bad_response", f"wrong schema: {key} must be finite")
    return arr.astype(np.float32)


def labels_json(labels: Labels) -> dict[str, list[Any]]:
    """The response body for ``labels`` (used by ``masssim serve``)."""
    return {
        "relevant_prob": [round(float(v), 6) for v in labels.relevant_prob],
        "intent": [INTENT_NAMES[int(c)] for c in labels.intent],
        "priority": [round(float(v), 6) for v in labels.priority],
    }


# --------------------------------------------------------------------------------------------------
# python: a classifier in a worker process
# --------------------------------------------------------------------------------------------------


class PythonTarget:
    """``python:package.module:factory`` (or a registered name, ``python:keyword``) in a worker process."""

    kind = "python"

    def __init__(
        self,
        spec: str,
        *,
        params: dict[str, Any] | None = None,
        timeout_s: float,
        training_messages: int = 5000,
        seed: np.random.SeedSequence | None = None,
        difficulty: float | None = None,
        max_merge: int = 1024,
        startup_timeout_s: float = 300.0,
    ) -> None:
        self.spec = spec
        self.description = f"python:{spec} (worker process)"
        self.params = dict(params or {})
        self.timeout_s = timeout_s
        self.training_messages = training_messages
        self.seed = seed if seed is not None else np.random.SeedSequence()
        self.difficulty = difficulty
        self.max_merge = max_merge
        self.startup_timeout_s = startup_timeout_s
        self.info: dict[str, Any] = {}
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count()
        self._outq: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._dead: str | None = None
        self._proc: Any = None

    async def start(self) -> None:
        from masssim.bench.worker import worker_main  # only python: targets start a worker process

        ctx = mp.get_context("spawn")
        in_read, in_write = ctx.Pipe(duplex=False)
        out_read, out_write = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(
            target=worker_main,
            args=(
                in_read,
                out_write,
                self.spec,
                self.params,
                self.training_messages,
                self.seed,
                self.difficulty,
                self.max_merge,
            ),
            daemon=True,
            name="masssim-bench-worker",
        )
        self._proc.start()
        in_read.close()
        out_write.close()
        self._send, self._recv = in_write, out_read
        loop = asyncio.get_running_loop()
        first = await loop.run_in_executor(None, self._wait_ready)
        if first[0] != "ready":
            await self.close()
            raise ScenarioError(
                f"the classifier could not be started in its worker ({first[1]})",
                file=WHERE,
                field="--target",
                value=f"python:{self.spec}",
                allowed="python:NAME (a registered classifier) or python:package.module:factory",
            )
        self.info = first[1]
        self._loop = loop
        threading.Thread(target=self._sender, name="bench-sender", daemon=True).start()
        threading.Thread(target=self._receiver, name="bench-receiver", daemon=True).start()

    def _wait_ready(self) -> tuple[str, Any]:
        waited = 0.0
        while waited < self.startup_timeout_s:
            if self._recv.poll(0.1):
                try:
                    msg = self._recv.recv()
                except (EOFError, OSError):
                    return ("fatal", f"worker exited with code {self._proc.exitcode}")
                return (msg[0], msg[1])
            if not self._proc.is_alive():
                return ("fatal", f"worker exited with code {self._proc.exitcode}")
            waited += 0.1
        return ("fatal", f"not ready after {self.startup_timeout_s:g} s")

    def _sender(self) -> None:
        while True:
            item = self._outq.get()
            try:
                self._send.send(item)
            except (OSError, ValueError):
                return
            if item is None:
                return

    def _receiver(self) -> None:
        while True:
            try:
                msg = self._recv.recv()
            except (EOFError, OSError):
                self._call(self._worker_gone)
                return
            self._call(self._deliver, msg)

    def _call(self, fn: Any, *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: the run is over
            self._loop.call_soon_threadsafe(fn, *args)

    def _deliver(self, msg: Any) -> None:
        fut = self._pending.pop(msg[1], None)
        if fut is None or fut.done():
            return  # answered after its timeout: already counted as a timeout
        if msg[0] == "r":
            fut.set_result(Reply(Labels(msg[2], msg[3], msg[4]), float(msg[5])))
        else:
            fut.set_exception(TargetFailure("worker", str(msg[2])))

    def _worker_gone(self) -> None:
        code = self._proc.exitcode if self._proc is not None else None
        self._dead = f"the worker process exited (code {code})"
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(TargetFailure("worker", self._dead))
        self._pending.clear()

    async def classify(self, texts: list[str]) -> Reply:
        if self._dead:
            raise TargetFailure("worker", self._dead)
        qid = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[qid] = fut
        self._outq.put(("q", qid, texts))
        try:
            return await asyncio.wait_for(fut, self.timeout_s)  # type: ignore[no-any-return]
        except TimeoutError:
            raise TargetFailure("timeout", f"no answer within {self.timeout_s:g} s") from None
        finally:
            self._pending.pop(qid, None)

    async def close(self) -> None:
        proc = self._proc
        if proc is None:
            return
        self._outq.put(None)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, proc.join, 2.0)
        if proc.is_alive():
            proc.terminate()
            await loop.run_in_executor(None, proc.join, 2.0)
        if proc.is_alive():  # pragma: no cover - terminate is enough for a Python worker
            proc.kill()
            await loop.run_in_executor(None, proc.join, 2.0)
        for conn in (getattr(self, "_send", None), getattr(self, "_recv", None)):
            if conn is not None:
                conn.close()
        self._proc = None


# --------------------------------------------------------------------------------------------------
# http: a classification service
# --------------------------------------------------------------------------------------------------


class HttpTarget:
    """``http://host:port/path``: JSON POST per query over reused keep-alive connections (aiohttp)."""

    kind = "http"

    def __init__(self, url: str, *, timeout_s: float) -> None:
        import yarl

        self.url = url
        self.description = url
        self.timeout_s = timeout_s
        self.info: dict[str, Any] = {}
        try:
            parsed = yarl.URL(url)
        except (ValueError, TypeError):
            parsed = None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
            raise ScenarioError(
                "not an HTTP URL", file=WHERE, field="--target", value=url, allowed="http://host:port/path"
            )
        self._parsed = parsed
        self._session: Any = None

    async def start(self) -> None:
        import aiohttp

        host, port = self._parsed.host, self._parsed.port
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=min(self.timeout_s, 5.0))
            writer.close()
        except (OSError, TimeoutError) as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or type(exc).__name__)
            raise ScenarioError(
                f"cannot connect to {host}:{port} ({reason})",
                file=WHERE,
                field="--target",
                value=self.url,
                allowed="the address of a running service, e.g. one started by `masssim serve`",
            ) from None
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=30.0),
            timeout=aiohttp.ClientTimeout(total=self.timeout_s),
        )

    async def classify(self, texts: list[str]) -> Reply:
        import aiohttp

        payload = json.dumps({"texts": texts}, ensure_ascii=False).encode("utf-8")
        try:
            async with self._session.post(self.url, data=payload, headers={"Content-Type": "application/json"}) as resp:
                body = await resp.read()
                status = resp.status
        except TimeoutError:
            raise TargetFailure("timeout", f"no answer within {self.timeout_s:g} s") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise TargetFailure("connection", f"{type(exc).__name__}: {exc}"[:200]) from None
        if status != 200:
            raise TargetFailure("http_status", f"HTTP {status}")
        return Reply(parse_reply(body, len(texts)))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def make_target(
    spec: str,
    *,
    timeout_s: float,
    params: dict[str, Any] | None = None,
    training_messages: int = 5000,
    seed: np.random.SeedSequence | None = None,
    difficulty: float | None = None,
) -> PythonTarget | HttpTarget:
    """A target from its command-line form; ScenarioError for anything else."""
    if spec.startswith("python:"):
        name = spec[len("python:") :]
        if not name:
            raise ScenarioError(
                "no classifier named",
                file=WHERE,
                field="--target",
                value=spec,
                allowed="python:keyword or python:pkg.mod:factory",
            )
        return PythonTarget(
            name,
            params=params,
            timeout_s=timeout_s,
            training_messages=training_messages,
            seed=seed,
            difficulty=difficulty,
        )
    if spec.startswith(("http://", "https://")):
        if params:
            raise ScenarioError(
                "classifier parameters apply to python: targets only", file=WHERE, field="--classifier-params"
            )
        return HttpTarget(spec, timeout_s=timeout_s)
    raise ScenarioError(
        "unknown kind of target",
        file=WHERE,
        field="--target",
        value=spec,
        allowed="python:NAME, python:package.module:factory or http://host:port/path",
    )
