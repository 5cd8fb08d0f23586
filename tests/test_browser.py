"""Reports in a real browser: Debian's chromium, headless, driven over the DevTools protocol.

For one report of each kind (run, run with inbound, compare, sweep, bench): no console error and no uncaught
exception, every chart drawn (a plot area of non-zero size with marks in it), and nothing wider than a
1024-pixel window. Skipped when chromium is not installed; `.ci/run` installs it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import masssim
from conftest import small_scenario

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
WIDTH = 1024

# Waits (up to 15 s) until every plotly div has drawn its SVG, then measures each chart and the page.
PROBE = """
(async () => {
  const graphs = () => Array.from(document.querySelectorAll('.plotly-graph-div'));
  for (let i = 0; i < 150 && !graphs().every(g => g.querySelector('.main-svg')); i++) {
    await new Promise(r => setTimeout(r, 100));
  }
  const charts = graphs().map(g => {
    const svg = g.querySelector('.main-svg');
    const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
    const marks = g.querySelectorAll(
      '.scatterlayer .trace path, .scatterlayer .point, .barlayer .point, .funnellayer .point, .pielayer path'
    ).length;
    return {width: box.width, height: box.height, marks: marks};
  });
  return {charts: charts, scrollWidth: document.documentElement.scrollWidth};
})()
"""


class _DevTools:
    """A minimal DevTools-protocol client: numbered calls, and every event kept for later reading."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            data = json.loads(message.data)
            if "id" in data and data["id"] in self.pending:
                self.pending.pop(data["id"]).set_result(data)
            else:
                self.events.append(data)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        number = next(self.ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[number] = future
        await self.ws.send_str(json.dumps({"id": number, "method": method, "params": params}))
        reply = await asyncio.wait_for(future, timeout=60)
        assert "error" not in reply, reply
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def event(self, method: str, timeout: float = 60) -> None:
        async def seen() -> None:
            while not any(e.get("method") == method for e in self.events):
                await asyncio.sleep(0.05)

        await asyncio.wait_for(seen(), timeout)


async def _inspect(page: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as profile:
        proc = await asyncio.create_subprocess_exec(
            str(CHROMIUM),
            "--headless=new",
            "--no-sandbox",  # tests may run as root in a container
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            f"--window-size={WIDTH},900",
            "about:blank",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            # chromium puts its profile lock (org.chromium.Chromium.*) in TMPDIR and leaves it when killed: inside
            # the profile it goes with it
            env={**os.environ, "TMPDIR": profile},
        )
        try:
            assert proc.stderr is not None
            port = None
            while port is None:
                line = (await asyncio.wait_for(proc.stderr.readline(), 60)).decode()
                assert line, "chromium exited before it listened"
                found = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
                port = int(found.group(1)) if found else None
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{port}/json/list") as response:
                    targets = await response.json()
                url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
                async with http.ws_connect(url, max_msg_size=0) as ws:
                    tools = _DevTools(ws)
                    for domain in ("Runtime.enable", "Log.enable", "Page.enable"):
                        await tools.call(domain)
                    await tools.call(
                        "Emulation.setDeviceMetricsOverride", width=WIDTH, height=900, deviceScaleFactor=1, mobile=False
                    )
                    await tools.call("Page.navigate", url=page.resolve().as_uri())
                    await tools.event("Page.loadEventFired")
                    probe = await tools.call(
                        "Runtime.evaluate", expression=PROBE, awaitPromise=True, returnByValue=True
                    )
                    tools.reader.cancel()
            errors = [
                e
                for e in tools.events
                if e.get("method") == "Runtime.exceptionThrown"
                or (e.get("method") == "Runtime.consoleAPICalled" and e["params"].get("type") == "error")
                or (e.get("method") == "Log.entryAdded" and e["params"]["entry"].get("level") == "error")
            ]
            value: dict[str, Any] = probe["result"]["value"]
            return {**value, "errors": errors}
        finally:
            proc.kill()
            await proc.wait()


INBOUND = {"mentions": {"sources": [{"name": "social", "base_rate_per_hour": 20.0}]}}


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("reports")
    arms = [{"name": "broadcast", "policy": "broadcast"}, {"name": "personas", "policy": "segments", "segments": 4}]
    scenario = small_scenario(arms=arms)
    with_inbound = small_scenario(name="unit_inbound", horizon_days=3, inbound=INBOUND)
    from masssim.bench import BenchConfig, run_bench

    bench = run_bench(
        BenchConfig(scenario="server", target="python:keyword", rate=200, duration_s=0.5, samples=300, seed=1)
    )
    return {
        "run": masssim.run(scenario, seed=1).save(out) / "report.html",
        "inbound": masssim.run(with_inbound, seed=1).save(out) / "report.html",
        "compare": masssim.compare(scenario, variants=["k2:creatives.count=2"], seed=1).save(out) / "report.html",
        "sweep": masssim.sweep(scenario, {"creatives.count": [1, 2, 4]}, seed=1, out=out).directory / "report.html",
        "bench": bench.save(out) / "report.html",
    }


@pytest.mark.parametrize("kind", ["run", "inbound", "compare", "sweep", "bench"])
def test_report_renders_in_a_real_browser(reports: dict[str, Path], kind: str) -> None:
    seen = asyncio.run(_inspect(reports[kind]))
    assert seen["errors"] == [], seen["errors"]
    charts = seen["charts"]
    assert charts, "the report has no chart"
    for i, chart in enumerate(charts):
        assert chart["width"] > 100 and chart["height"] > 100, (i, chart)
        assert chart["marks"] > 0, (i, chart)
    assert seen["scrollWidth"] <= WIDTH, f"the page is {seen['scrollWidth']} px wide at a {WIDTH} px window"
