"""Properties of bad input (issue 10): whatever a user gives masssim, the answer is a result or one line.

Hypothesis generates TOML documents (keys of any characters, any nesting depth, any value types), message
files (JSONL and CSV) and HTTP bodies. For each, the command line (run in-process, so a traceback would
fail the test as an exception) exits 0 or 2 with exactly one line on stderr, and serve answers 200, 400 or
413, never 500. Where one field or one line is at fault, the message names it.

The examples are derandomized (the same ones on every run and machine) and sized to keep this file at a
few seconds: every property is a few hundred examples of a validation, never a simulation.
"""

from __future__ import annotations

import asyncio
import json
import re
import tomllib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from masssim.config.errors import ScenarioError, format_loc, toml_key
from masssim.model.message_files import load_labelled_messages
from strategies import any_key, command_line_override, csv_line, http_body, jsonl_line, one_odd_key, toml_text
from test_bad_input import cli

# Generated cases per property, counted as they run (the issue asks for the number; see test_cases_counted),
# and how many each property asks Hypothesis for.
CASES: Counter[str] = Counter()
EXAMPLES = {
    "scenario text": 400,
    "scenario with one odd key": 300,
    "key quoting": 300,
    "JSONL message file": 300,
    "CSV message file": 200,
    "HTTP body": 300,
    "command-line override": 300,
}


def properties(examples: int) -> Any:
    return settings(
        max_examples=examples,
        derandomize=True,  # the same examples everywhere: a failure on CI is a failure here
        database=None,
        deadline=None,  # a shared 2-core machine: time limits per example would be flaky
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
    )


def ok_or_one_line(code: int, out: str, err: str) -> str | None:
    """The error line when the command failed on bad input, None when it succeeded; fails on anything else."""
    assert "Traceback" not in err
    if code == 0:
        assert err == "" and "ok" in out
        return None
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1 and err.endswith("\n"), err
    assert lines[0].startswith("masssim: error: "), err
    return lines[0]


# --- scenario files -------------------------------------------------------------------------------------


@properties(EXAMPLES["scenario text"])
@given(text=toml_text(), bom=st.booleans())
def test_any_scenario_text_validates_or_gives_one_line(tmp_path: Path, text: str, bom: bool) -> None:
    CASES["scenario text"] += 1
    path = tmp_path / "s.toml"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8", "surrogatepass"))
    line = ok_or_one_line(*cli("validate", str(path)))
    if line is not None:
        assert str(path) in line


@properties(EXAMPLES["scenario with one odd key"])
@given(case=one_odd_key())
def test_one_unknown_key_anywhere_is_named(tmp_path: Path, case: tuple[dict[str, Any], tuple[Any, ...]]) -> None:
    CASES["scenario with one odd key"] += 1
    data, loc = case
    path = tmp_path / "s.toml"
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    line = ok_or_one_line(*cli("validate", str(path)))
    assert line is not None, "an unknown key was accepted"
    assert f": {format_loc(loc)}" in line, line


@properties(EXAMPLES["key quoting"])
@given(key=any_key)
def test_field_paths_quote_keys_as_toml_reads_them(key: str) -> None:
    # The oracle is tomllib: the key as shown in a message is the key TOML reads back, and it is one line.
    CASES["key quoting"] += 1
    shown = toml_key(key)
    assert tomllib.loads(f"{shown} = 1") == {key: 1}
    assert len(f"{shown}".splitlines()) == 1


# --- message files --------------------------------------------------------------------------------------

VALID_JSONL = [
    '{"text": "my order never arrived", "relevant": true, "intent": "complaint"}',
    '{"text": "nice weather today", "relevant": false}',
]
VALID_CSV = ["my order never arrived,true,complaint", "nice weather today,false,"]


def check_message_file(path: Path, *bad_lines: int) -> None:
    """The Python loader raises ScenarioError naming the bad line, or reads the file; the CLI agrees."""
    assert sum(1 for _ in path.open(encoding="utf-8")) <= max(bad_lines)
    try:
        load_labelled_messages(path)
    except ScenarioError as exc:
        message = str(exc)
        assert len(message.splitlines()) == 1
        named = re.search(re.escape(str(path)) + r":(\d+)", message)
        if named is not None:
            assert int(named.group(1)) in bad_lines, message  # the generated line is the only one at fault
        else:  # a problem of the whole file, named as such
            assert message.startswith(f"{path}: "), message
            assert "no messages in the file" in message or "the file is empty" in message, message
        # bench refuses the same file before any measurement
        line = ok_or_one_line(*cli("bench", "--messages", str(path), "-o", str(path.parent / "out")))
        assert line is not None and f"{path}:" in line
        assert not (path.parent / "out").exists()
    scenario = path.parent / "s.toml"
    scenario.write_text(f'name = "x"\n[inbound.messages]\npath = "{path.name}"\n', encoding="utf-8")
    line = ok_or_one_line(*cli("validate", str(scenario)))
    if line is not None:
        assert "inbound.messages.path" in line


@properties(EXAMPLES["JSONL message file"])
@given(line=jsonl_line(), before=st.integers(0, 2))
def test_any_jsonl_line_is_read_or_named(tmp_path: Path, line: str, before: int) -> None:
    CASES["JSONL message file"] += 1
    path = tmp_path / "m.jsonl"
    path.write_text("\n".join([*VALID_JSONL[:before], line]) + "\n", encoding="utf-8")
    check_message_file(path, before + 1)


@properties(EXAMPLES["CSV message file"])
@given(line=csv_line(), before=st.integers(0, 2), header=st.sampled_from(["text,relevant,intent", "any"]))
def test_any_csv_row_is_read_or_named(tmp_path: Path, line: str, before: int, header: str) -> None:
    CASES["CSV message file"] += 1
    path = tmp_path / "m.csv"
    head = header if header != "any" else line  # sometimes the generated line is the header itself
    path.write_text("\n".join([head, *VALID_CSV[:before], line]) + "\n", encoding="utf-8")
    # the generated line is the last row, and the header too when header == "any"
    check_message_file(path, before + 2, *([1] if header == "any" else []))


# --- HTTP bodies for masssim serve ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[asyncio.AbstractEventLoop, Any]]:
    from aiohttp.test_utils import TestClient, TestServer

    from masssim.bench.serve import build_app
    from masssim.classify.registry import build_classifier

    loop = asyncio.new_event_loop()
    app = build_app(build_classifier("keyword"), name="keyword", max_request_bytes=1 << 16, max_texts=50)
    client = TestClient(TestServer(app), loop=loop)
    loop.run_until_complete(client.start_server())
    try:
        yield loop, client
    finally:
        loop.run_until_complete(client.close())
        loop.close()


@properties(EXAMPLES["HTTP body"])
@given(body=http_body())
def test_any_http_body_gets_an_answer_or_a_4xx(server: tuple[asyncio.AbstractEventLoop, Any], body: bytes) -> None:
    CASES["HTTP body"] += 1
    loop, client = server

    async def post() -> tuple[int, Any]:
        resp = await client.post("/classify", data=body, headers={"Content-Type": "application/json"})
        return resp.status, await resp.json()

    status, answer = loop.run_until_complete(post())
    assert status in (200, 400, 413), (status, answer)
    if status == 200:
        texts = json.loads(body)["texts"]
        assert len(answer["intent"]) == len(texts)
    else:
        assert isinstance(answer["error"], str) and answer["error"]


# --- command lines -----------------------------------------------------------------------------------------


class WouldSimulate(Exception):
    """Raised in place of a simulation: the command line was accepted."""


def would_simulate(*args: object, **kwargs: object) -> None:
    raise WouldSimulate


@properties(EXAMPLES["command-line override"])
@given(case=command_line_override())
def test_any_override_or_stop_rule_is_accepted_or_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: tuple[str, str]
) -> None:
    import sys

    import masssim

    CASES["command-line override"] += 1
    # masssim.compare and masssim.sweep are also function names: patch the modules by their full names
    monkeypatch.setattr(sys.modules["masssim.experiments.compare"], "replicate", would_simulate)
    monkeypatch.setattr(sys.modules["masssim.experiments.sweep"], "Executor", would_simulate)
    monkeypatch.setattr(masssim, "run", would_simulate)
    scenario = tmp_path / "s.toml"
    scenario.write_text('name = "s"\n[[arms]]\nname = "broadcast"\npolicy = "broadcast"\n', encoding="utf-8")
    option, text = case
    command = {"--variant": "compare", "--param": "sweep", "--until": "run"}[option]
    try:
        code, out, err = cli(command, str(scenario), option, text, "-o", str(tmp_path / "out"), "-q")
    except WouldSimulate:
        return
    line = ok_or_one_line(code, out or "ok", err)
    assert line is not None
    assert option in line or "sweep cell" in line, line  # the option (or the sweep cell it made) is named


def test_cases_counted() -> None:
    """Runs last in this file: prints how many cases the properties above generated (for the issue's note)."""
    if not CASES:
        pytest.skip("the properties did not run in this session")
    print("\ngenerated bad-input cases:", dict(CASES), "total", sum(CASES.values()))
    # Each property that ran tried every case it asked for: none was filtered away or cut short (a strategy
    # that rejects most of what it draws, or a property that stops early, would show here).
    assert {name: CASES[name] for name in CASES} == {name: EXAMPLES[name] for name in CASES}
