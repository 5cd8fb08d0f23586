"""HTTP targets that misbehave, and ``masssim serve`` (request size limit, schema, the CLI end to end)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench_helpers import http_server
from masssim.bench import BenchConfig, run_bench
from masssim.cli import main

BASE = {
    "scenario": "server",
    "rate": 40.0,
    "duration_s": 0.6,
    "warmup_s": 0.0,
    "min_queries": 10,
    "samples": 200,
    "seed": 3,
}


@pytest.fixture(scope="module")
def misbehaving() -> Iterator[str]:
    with http_server() as base:
        yield base


@pytest.mark.parametrize(
    ("path", "kind", "words"),
    [
        ("/hang", "timeout", "no answer within"),
        ("/reset", "connection", ""),
        ("/garbage", "bad_response", "not JSON"),
        ("/schema", "bad_response", "wrong schema"),
    ],
)
def test_a_broken_target_is_counted_and_ends_the_run_in_time(
    misbehaving: str, path: str, kind: str, words: str
) -> None:
    timeout = 0.5
    start = time.perf_counter()
    result = run_bench(BenchConfig(target=misbehaving + path, timeout_s=timeout, **BASE))
    elapsed = time.perf_counter() - start
    run = result.summary["run"]
    assert result.verdict == "FAIL"
    assert result.exit_code == 1
    # Every measured query is accounted for: none answered, all failed with this kind.
    assert run["queries"]["failed"][kind] == run["queries"]["measured"] > 0
    assert run["queries"]["answered"] == 0
    assert words in " ".join(result.summary["reasons"])
    # Within duration + timeout (plus setup: the corpus, the session, closing connections).
    assert elapsed < BASE["duration_s"] + timeout + 1.0


def _post(url: str, body: bytes) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_serve_cli_limits_request_size_and_answers_the_schema(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "masssim", "serve", "--port", "0", "--max-request-bytes", "4096", "--max-texts", "50"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "masssim serve: keyword on http://127.0.0.1:" in line, (line, proc.stderr.read() if proc.poll() else "")
        url = line.split(" on ")[1].split()[0]
        status, body = _post(url, json.dumps({"texts": ["my windows crashed, refund!", "nice day"]}).encode())
        assert status == 200
        assert body["intent"] == ["complaint", "other"] and body["relevant_prob"] == [1.0, 0.0]
        status, body = _post(url, json.dumps({"texts": ["x" * 5000]}).encode())
        assert status == 413 and "4096 bytes" in str(body["error"])
        status, body = _post(url, json.dumps({"texts": ["a"] * 51}).encode())
        assert status == 413
        status, body = _post(url, b"{not json")
        assert status == 400
        status, body = _post(url, json.dumps({"text": "a"}).encode())
        assert status == 400
        # The bench CLI against it: exit 0 on PASS, JSON and HTML written.
        out = tmp_path / "out"
        with pytest.raises(SystemExit) as exit_info:
            main(
                [
                    "bench",
                    "--target",
                    url,
                    "--rate",
                    "50",
                    "--duration",
                    "0.5",
                    "--warmup",
                    "0",
                    "--min-queries",
                    "10",
                    "--samples",
                    "100",
                    "--seed",
                    "1",
                    "--out",
                    str(out),
                    "--quiet",
                ]
            )
        assert exit_info.value.code == 0
        (run_dir,) = (out / "bench").iterdir()
        summary = json.loads((run_dir / "bench.json").read_text())
        assert summary["verdict"] == "PASS" and "f1" in summary["quality"]["relevance"]
        html = (run_dir / "report.html").read_text()
        assert "Latency histogram" in html and "<script src" not in html
        # An unbounded latency of 1 microsecond fails: exit status 1.
        with pytest.raises(SystemExit) as exit_info:
            main(
                [
                    "bench",
                    "--target",
                    url,
                    "--rate",
                    "50",
                    "--duration",
                    "0.3",
                    "--warmup",
                    "0",
                    "--min-queries",
                    "5",
                    "--samples",
                    "100",
                    "--latency-bound",
                    "0.000001",
                    "--out",
                    str(out),
                    "--quiet",
                ]
            )
        assert exit_info.value.code == 1
    finally:
        proc.terminate()
        proc.wait(10)


def test_unreachable_target_and_bad_options_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--target", "http://127.0.0.1:1/classify", "--duration", "0.2", "--samples", "10"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("masssim: error:") and "--target" in err and "cannot connect" in err
    assert len(err.splitlines()) == 1
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--scenario", "single-stream", "--find-peak"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--classifier", "no-such-classifier", "--port", "0"])
    assert exit_info.value.code == 2
    assert "--classifier" in capsys.readouterr().err
