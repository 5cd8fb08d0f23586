"""Bad input never escapes as a traceback (issue 10): each case here once did.

Every case runs the command line in-process through ``masssim.cli.main`` (a traceback would propagate as
an exception and fail the test) and checks the promise: exit status 2, one line on stderr, naming the
file, the field and what is allowed.
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

import masssim
from masssim.cli import main
from masssim.config.errors import ScenarioError

OK = 'name = "bad_input"\nreplications = 2\nhorizon_days = 2\n[population]\ncustomers = 500\n'


def cli(*args: str) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``masssim ARGS``, run in this process."""
    out, err = io.StringIO(), io.StringIO()
    code: int | str | None = 0
    with redirect_stdout(out), redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code
    return int(code or 0), out.getvalue(), err.getvalue()


def one_line_error(args: tuple[str, ...], *needles: str) -> str:
    code, _, err = cli(*args)
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("masssim: error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def write(tmp_path: Path, text: str, name: str = "s.toml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


# --- the error formatter ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "shown"),
    [("a[b]", '"a[b]"'), ("function-x", "function-x"), ("list[int]", '"list[int]"'), ("a\nb", '"a\\u000Ab"')],
)
def test_odd_keys_are_named_not_a_crash(tmp_path: Path, key: str, shown: str) -> None:
    quoted = json.dumps(key)
    line = one_line_error(("validate", write(tmp_path, f'name = "x"\n{quoted} = 1\n')), f": {shown}: unknown field")
    assert "allowed: arms" in line


def test_odd_keys_inside_tables_and_dicts(tmp_path: Path) -> None:
    one_line_error(
        ("validate", write(tmp_path, 'name = "x"\n[population]\n"function-after[x]" = 1\n')),
        'population."function-after[x]": unknown field',
    )
    one_line_error(
        ("validate", write(tmp_path, 'name = "x"\n[inbound.replies.intent_shares]\n"a[b]" = 1.0\n')),
        'inbound.replies.intent_shares."a[b]": unknown intent',
    )


def test_bad_index_in_variant_and_sweep_param(tmp_path: Path) -> None:
    scenario = write(tmp_path, OK)
    one_line_error(("compare", scenario, "--variant", "v:arms[x].name=3", "-o", str(tmp_path)), "arms[x]", "INDEX")
    one_line_error(("sweep", scenario, "--param", "arms[x].segments=1,2", "-o", str(tmp_path)), "arms[x]", "INDEX")
    one_line_error(("compare", scenario, "--variant", "v:seed[1]=3", "-o", str(tmp_path)), "seed", "not a list")
    assert not any(tmp_path.glob("bad_input"))  # nothing was run, nothing written


# --- depth, size, encoding, numbers ----------------------------------------------------------------------


def test_500_nested_arrays_in_toml(tmp_path: Path) -> None:
    deep = "[" * 500 + "]" * 500
    one_line_error(("validate", write(tmp_path, f'name = "x"\nsweep = {{ seed = {deep} }}\n')), "nested too deeply")


def test_nesting_that_tomllib_reads_is_still_bounded(tmp_path: Path) -> None:
    deep = "[" * 60 + "1" + "]" * 60
    one_line_error(
        ("validate", write(tmp_path, f'name = "x"\n[inbound]\nclassifier_params = {{ bits = {deep} }}\n')),
        "inbound.classifier_params.bits[0][0]",
        "nested too deeply",
    )
    data: list[object] = []
    for _ in range(5000):  # the Python API too: deeper than the recursion limit
        data = [data]
    with pytest.raises(ScenarioError, match="nested too deeply"):
        masssim.scenario_from_dict({"name": "x", "sweep": {"seed": data}})


def test_a_calibration_file_nested_too_deeply(tmp_path: Path) -> None:
    (tmp_path / "core.json").write_text("[" * 5000 + "]" * 5000)
    text = 'name = "x"\n[inbound.core]\ncalibration = "core.json"\n'
    one_line_error(("validate", write(tmp_path, text)), "inbound.core.calibration", "nested too deeply")


def test_missing_unreadable_and_odd_paths(tmp_path: Path) -> None:
    one_line_error(("validate", str(tmp_path / "none.toml")), "none.toml: file not found")
    one_line_error(("validate", str(tmp_path)), "is a directory, not a scenario file")
    with pytest.raises(ScenarioError, match=r"a\\x00b\.toml: file not found"):  # argv cannot hold a NUL byte
        masssim.load_scenario("a\x00b.toml")
    one_line_error(("validate", "x" * 5000 + ".toml"), "cannot be read")


def test_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + OK.encode())
    assert masssim.load_scenario(path).name == "bad_input"
    code, out, err = cli("validate", str(path))
    assert code == 0 and "ok" in out, err


def test_non_finite_numbers_are_refused(tmp_path: Path) -> None:
    text = 'name = "x"\n[inbound]\nclassifier = "hashed"\nclassifier_params = { l2 = inf }\n'
    one_line_error(("validate", write(tmp_path, text)), "inbound.classifier_params.l2", "finite", "(got inf)")
    text = 'name = "x"\n[inbound]\nclassifier = "hashed"\nclassifier_params = { l2 = nan }\n'
    one_line_error(("validate", write(tmp_path, text)), "inbound.classifier_params.l2", "finite")
    one_line_error(
        ("bench", "--classifier-params", '{"l2": Infinity}', "-t", "python:hashed", "-o", str(tmp_path)),
        "l2",
        "finite",
    )


def test_a_scheduler_address_dask_cannot_parse(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    scenario = write(tmp_path, OK)
    one_line_error(("run", scenario, "--engine", "dask", "--scheduler", "foo", "-o", str(tmp_path)), "--scheduler")


def test_huge_values_make_a_short_line(tmp_path: Path) -> None:
    line = one_line_error(("validate", write(tmp_path, f'name = "{"x" * 1_000_000}"\n')), "name")
    assert len(line) < 1000


# --- messages that say what is allowed -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["..", ".", "a/b", ".hidden", "a b", ""])
def test_run_names_are_single_safe_folder_names(tmp_path: Path, name: str) -> None:
    line = one_line_error(("validate", write(tmp_path, f'name = "{name}"\n')), ": name: ")
    assert "letters, digits" in line and not line.endswith("allowed: text")


def test_a_dotdot_name_writes_nothing_outside_out(tmp_path: Path) -> None:
    scenario = write(tmp_path, 'name = ".."\n[population]\ncustomers = 500\n')
    out = tmp_path / "D" / "out"
    for command in (("run", scenario), ("sweep", scenario, "-p", "seed=1,2"), ("compare", scenario, "-v", "b:seed=2")):
        one_line_error((*command, "-o", str(out)), ": name: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]


def test_empty_arms_says_what_is_allowed(tmp_path: Path) -> None:
    one_line_error(("validate", write(tmp_path, 'name = "x"\narms = []\n')), "arms", "a list of 1 to 64", "[[arms]]")


# --- plug-ins of the wrong kind ---------------------------------------------------------------------------


def arm(policy: str) -> str:
    return f'name = "x"\n[[arms]]\nname = "a"\npolicy = "{policy}"\n'


@pytest.mark.parametrize(
    ("policy", "what"),
    [
        ("os:system", "a built-in function"),
        ("os:path", "a module"),
        ("os:sep", "a value of type str"),
        ("masssim.classify.hashed:HashedClassifier", "without plan() or observe()"),
        ("policies_for_tests:PlanOnly", "without observe()"),
        ("policies_for_tests:not_a_policy", "not annotated to return such a class"),
        ("masssim.policies.base:TargetingPolicy", "a protocol or abstract class"),
    ],
)
def test_wrong_kind_of_policy_is_refused_at_validate(tmp_path: Path, policy: str, what: str) -> None:
    one_line_error(
        ("validate", write(tmp_path, arm(policy))),
        "arms[0].policy",
        what,
        "allowed: a class with plan() and observe() methods",
    )


def test_policy_classes_and_annotated_factories_pass_validation() -> None:
    for policy in ("policies_for_tests:MinimalPolicy", "policies_for_tests:make_minimal"):
        scenario = masssim.scenario_from_dict({"name": "x", "arms": [{"name": "a", "policy": policy}]})
        assert scenario.arms[0].policy == policy


def test_wrong_kind_of_classifier_or_response_policy(tmp_path: Path) -> None:
    one_line_error(
        ("validate", write(tmp_path, 'name = "x"\n[inbound]\nclassifier = "os:system"\n')),
        "inbound.classifier",
        "a built-in function, not a classifier",
        "a classify() method",
    )
    one_line_error(
        ("validate", write(tmp_path, 'name = "x"\n[inbound]\nresponse_policy = "os:path"\n')),
        "inbound.response_policy",
        "a module, not a response policy",
        "route() and schedule_for()",
    )
    one_line_error(("bench", "-t", "python:os:system", "-o", str(tmp_path)), "--target", "not a classifier")
    one_line_error(("serve", "-c", "os:system", "--training-messages", "0"), "--classifier", "not a classifier")


# --- message files (inbound.messages.path and bench --messages) -----------------------------------------


def deep_jsonl(tmp_path: Path) -> Path:
    path = tmp_path / "deep.jsonl"
    path.write_text('{"text": "hello", "relevant": false}\n' + "[" * 1000 + "]" * 1000 + "\n", encoding="utf-8")
    return path


def huge_csv(tmp_path: Path) -> Path:
    path = tmp_path / "huge.csv"
    path.write_text('text,relevant\n"' + "a" * 140_000 + '",true\n', encoding="utf-8")
    return path


def test_message_files_nested_too_deeply_or_too_large(tmp_path: Path) -> None:
    for path, needle in (
        (deep_jsonl(tmp_path), "deep.jsonl:2: is nested too deeply"),
        (huge_csv(tmp_path), "huge.csv:2"),
    ):
        scenario = write(tmp_path, f'name = "x"\n[inbound.messages]\npath = "{path.name}"\n')
        one_line_error(("validate", scenario), "inbound.messages.path", needle)
        one_line_error(("bench", "--messages", str(path), "-o", str(tmp_path / "out")), needle)
    assert not (tmp_path / "out").exists()


def test_message_file_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    from masssim.model.message_files import load_labelled_messages

    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbftext,relevant,intent\nmy order is late,true,complaint\n")
    assert load_labelled_messages(path).text == ["my order is late"]


def test_message_text_with_a_lone_surrogate_is_named(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('{"text": "fine", "relevant": false}\n{"text": "bad \\ud800", "relevant": false}\n')
    one_line_error(("bench", "--messages", str(path), "-o", str(tmp_path / "out")), "m.jsonl:2", "text", "surrogate")


def test_classifier_params_nested_too_deeply(tmp_path: Path) -> None:
    deep = "[" * 5000 + "]" * 5000
    one_line_error(("bench", "--classifier-params", deep, "-o", str(tmp_path)), "--classifier-params", "JSON object")


# --- masssim serve --------------------------------------------------------------------------------------


async def _post_all(bodies: list[bytes]) -> list[tuple[int, dict[str, object]]]:
    from aiohttp.test_utils import TestClient, TestServer

    from masssim.bench.serve import build_app
    from masssim.classify.registry import build_classifier

    app = build_app(build_classifier("keyword"), name="keyword", max_request_bytes=1 << 16, max_texts=50)
    async with TestClient(TestServer(app)) as client:
        out = []
        for body in bodies:
            resp = await client.post("/classify", data=body, headers={"Content-Type": "application/json"})
            out.append((resp.status, await resp.json()))
        return out


def test_serve_answers_400_to_a_body_nested_1000_deep() -> None:
    import asyncio

    (status, body), (ok, _) = asyncio.run(_post_all([b"[" * 1000 + b"]" * 1000, b'{"texts": ["a"]}']))
    assert status == 400 and "nested too deeply" in str(body["error"])
    assert ok == 200


# --- results land only inside --out ------------------------------------------------------------------------


def no_simulation(*args: object, **kwargs: object) -> None:
    raise AssertionError("the output folder must be checked before any simulation")


@pytest.mark.parametrize("layout", ["file", "under_a_file", "read_only"])
def test_unwritable_out_is_found_before_simulating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout: str
) -> None:
    import errno
    import sys

    import masssim.bench.api
    import masssim.reporting.results

    scenario = write(tmp_path, OK)
    (tmp_path / "afile").write_text("x")
    out = {"file": tmp_path / "afile", "under_a_file": tmp_path / "afile" / "sub", "read_only": tmp_path / "ro"}[layout]
    if layout == "read_only":

        def read_only(*args: object, **kwargs: object) -> None:
            raise OSError(errno.EROFS, "Read-only file system")

        monkeypatch.setattr(masssim.reporting.results.tempfile, "mkstemp", read_only)
    monkeypatch.setattr(masssim, "run", no_simulation)
    # masssim.compare and masssim.sweep are also the names of functions: the modules by their full names
    monkeypatch.setattr(sys.modules["masssim.experiments.compare"], "compare", no_simulation)
    monkeypatch.setattr(sys.modules["masssim.experiments.sweep"], "Executor", no_simulation)
    monkeypatch.setattr(masssim.bench.api, "run_bench", no_simulation)
    for args in (
        ("run", scenario),
        ("compare", scenario, "-v", "b:seed=3"),
        ("sweep", scenario, "-p", "seed=1,2"),
        ("bench", "--scenario", "offline"),
    ):
        one_line_error((*args, "-o", str(out)), str(out), "--out", "a folder you can write to")
    if layout == "file":
        one_line_error(("bench", "--scenario", "offline", "--calibrate", str(tmp_path)), "--calibrate", "is a folder")
        one_line_error(
            ("bench", "--scenario", "offline", "--calibrate", str(out / "cal.json")), "--calibrate", "is a file"
        )


def test_a_run_id_is_one_folder_name(tmp_path: Path) -> None:
    from masssim.reporting.results import publish_directory

    for run_id in ("../escape", "a/b", ".", ".."):
        with pytest.raises(ScenarioError, match="single folder name"):
            publish_directory(tmp_path / "out" / "unit", run_id, lambda partial: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written, inside or outside


def test_a_killed_runs_partial_folder_is_removed_by_the_next_save(tmp_path: Path) -> None:
    import fcntl
    import os

    from masssim.reporting.results import publish_directory

    base = tmp_path / "unit"
    leftover = base / "20250101T000000Z-abc.partial"
    leftover.mkdir(parents=True)
    (leftover / "summary.json").write_text("{")
    # another run writing into the same folder right now: its .partial is not touched
    fd = os.open(base, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_SH)
    try:
        publish_directory(base, "first", lambda partial: (partial / "f").write_text("1"))
        assert leftover.is_dir()
    finally:
        os.close(fd)
    final = publish_directory(base, "second", lambda partial: (partial / "f").write_text("2"))
    assert not leftover.exists()
    assert sorted(p.name for p in base.iterdir()) == ["first", "second"] and final.name == "second"


def test_a_cut_sweep_cell_or_spec_is_recomputed(tmp_path: Path) -> None:
    import sys

    sweep_module = sys.modules["masssim.experiments.sweep"]  # masssim.sweep is also the name of the function
    scenario = masssim.scenario_from_toml(OK)
    first = sweep_module.sweep(scenario, {"creatives.count": [2, 3]}, seed=5, out=tmp_path)
    cell = first.directory / "cells" / "00001.json"
    whole = cell.read_text()
    cell.write_text(whole[: len(whole) // 2])  # a disk that filled up mid-write, or a copy cut short
    again = sweep_module.sweep(scenario, {"creatives.count": [2, 3]}, seed=5, out=tmp_path)
    assert again.manifest["cells_computed_now"] == 1
    assert json.loads(cell.read_text()) == json.loads(whole)  # the same seed gives the same cell
    (first.directory / "cells" / "00000.json").write_text('{"index": 0}')  # valid JSON, not a cell
    assert (
        sweep_module.sweep(scenario, {"creatives.count": [2, 3]}, seed=5, out=tmp_path).manifest["cells_computed_now"]
        == 1
    )
    (first.directory / "spec.json").write_text('{"seed_ent')
    assert (
        sweep_module.sweep(scenario, {"creatives.count": [2, 3]}, seed=5, out=tmp_path).manifest["cells_computed_now"]
        == 2
    )


def test_report_of_a_damaged_run_and_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    import masssim.reporting.results

    scenario = masssim.scenario_from_toml(OK)
    run_dir = masssim.run(scenario, seed=1, replications=2).save(tmp_path)
    good = (run_dir / "summary.json").read_text()
    (run_dir / "summary.json").write_text('{"arms": {}}')
    one_line_error(("report", str(run_dir)), "summary.json", "does not hold a summary masssim can read")
    (run_dir / "summary.json").write_text('{"arms": ')
    one_line_error(("report", str(run_dir)), "summary.json", "not valid JSON")
    (run_dir / "summary.json").write_text("[1, 2]")
    one_line_error(("report", str(run_dir)), "summary.json", "not a run summary")
    (run_dir / "summary.json").write_text('{"arms": [1]}')
    one_line_error(("report", str(run_dir)), "summary.json", "does not hold a summary")
    (run_dir / "summary.json").write_text(good)
    series = run_dir / "timeseries.csv"
    lines = series.read_text().splitlines()
    series.write_text("\n".join([lines[0], lines[1] + "x", *lines[2:]]) + "\n")  # a number that is not one
    one_line_error(("report", str(run_dir)), "timeseries.csv", "not a time series masssim wrote")

    def disk_full(self: object, out: object, run_id: object = None) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x" / "summary.json"))

    monkeypatch.setattr(masssim.reporting.results.RunResult, "save", disk_full)
    one_line_error(("run", write(tmp_path, OK), "-o", str(tmp_path / "x")), "summary.json", "No space left")
