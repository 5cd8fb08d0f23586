"""``masssim fit`` at the command line: the tables it writes, and one clear line for every bad file.

Every bad case runs ``masssim.cli.main`` in-process (test_bad_input's runner) and checks the promise: exit
status 2, one line on stderr naming the file (and line), the column, the value and what is allowed, no
traceback, and no table written.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

import masssim
from test_bad_input import cli, one_line_error

PANEL = (
    "customer,brand,date\n"
    "a,Colgate,2024-01-03\n"
    "a,Crest,2024-01-20\n"
    "b,Colgate,2024-02-01\n"
    "b,Colgate,2024-02-11\n"
    "c,Crest,2024-03-30\n"
    "d,Aquafresh,2024-03-01\n"
    "d,Colgate,2024-01-05\n"
    "e,Colgate,2024-02-05\n"
)
LOG = (
    "customer,channel,sent_at,delivered,opened,clicked,unsubscribed,replied\n"
    "1,email,2024-05-01T10:00:00,1,1,0,0,0\n"
    "2,email,2024-05-01T10:00:00,1,0,0,0,0\n"
    "3,email,2024-05-01T10:00:00,0,0,0,0,0\n"
    "4,sms,2024-05-02 10:00,true,TRUE,false,False,0\n"
    "5,sms,2024-05-02T10:00+02:00,1,0,1,0,0\n"
)


def write(tmp_path: Path, text: str, name: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_fit_market_writes_a_table_a_scenario_loads(tmp_path: Path) -> None:
    out = tmp_path / "market.toml"
    code, stdout, stderr = cli("fit", "market", write(tmp_path, PANEL, "p.csv"), "--customers", "20", "-o", str(out))
    assert code == 0, stderr
    assert "Goodness of fit" in stdout and "penetration" in stdout and "Duplication of purchase" in stdout
    data = tomllib.loads(out.read_text(encoding="utf-8"))
    assert next(b["name"] for b in data["market"]["brands"]) == "Colgate"  # the biggest first
    masssim.scenario_from_dict({"name": "x", **data})
    assert "88 days" in out.read_text(encoding="utf-8")  # 2024-01-03 to 2024-03-30, both included


def test_fit_channels_writes_tables_a_scenario_loads(tmp_path: Path) -> None:
    out = tmp_path / "channels.toml"
    code, stdout, stderr = cli("fit", "channels", write(tmp_path, LOG, "log.csv"), "-o", str(out))
    assert code == 0, stderr
    assert "Wilson" in stdout
    assert "counted as opened" in stdout  # sms row 5: a click without a recorded open
    data = tomllib.loads(out.read_text(encoding="utf-8"))
    assert data["channels"]["email"]["delivery_rate"] == pytest.approx(2 / 3, rel=1e-5)
    assert data["channels"]["sms"]["click_to_open"] == pytest.approx(0.5)
    masssim.scenario_from_dict({"name": "x", **data})


def test_fit_help_defines_the_columns() -> None:
    code, stdout, _ = cli("fit", "channels", "--help")
    assert code == 0
    for column in ("customer", "channel", "sent_at", "delivered", "opened", "clicked", "unsubscribed", "replied"):
        assert column in stdout
    code, stdout, _ = cli("fit", "market", "--help")
    assert all(column in stdout for column in ("customer", "brand", "date", "--customers"))


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("customer,date\na,2024-01-01\n", ("p.csv:1", "missing column 'brand'", "allowed: a header row")),
        (PANEL.replace("2024-02-11", "2024-02-31"), ("p.csv:5", "date", "'2024-02-31'", "ISO date")),
        (PANEL.replace("2024-01-20", "20/01/2024"), ("p.csv:3", "date", "'20/01/2024'")),
        ("customer,brand,date\n", ("p.csv", "no rows")),
        ("", ("p.csv", "empty")),
        (PANEL.replace("e,Colgate,2024-02-05", "e,Colgate"), ("p.csv:9", "fields")),
        (PANEL.replace("c,Crest", "c,"), ("p.csv:6", "brand", "empty value")),
        ("customer,brand,date\na,X,2024-01-01\nb,X,2024-01-02\n", ("brand", "only one brand", "at least 2")),
        ("customer,brand,date\na,X,2024-01-01\nb,Y,2024-01-02\n", ("p.csv", "no customer bought more than once")),
    ],
)
def test_bad_panels(tmp_path: Path, text: str, needles: tuple[str, ...]) -> None:
    out = tmp_path / "market.toml"
    one_line_error(("fit", "market", write(tmp_path, text, "p.csv"), "-o", str(out)), *needles)
    assert not out.exists()


def test_bad_market_options(tmp_path: Path) -> None:
    panel = write(tmp_path, PANEL, "p.csv")
    one_line_error(
        ("fit", "market", panel, "--ours", "Pepsodent"), "--ours", "'Pepsodent'", "Aquafresh, Colgate, Crest"
    )
    one_line_error(("fit", "market", panel, "--customers", "3"), "--customers", "5 customers who bought")
    one_line_error(("fit", "market", panel, "--span-days", "30"), "--span-days", "at least 88 days")
    one_line_error(("fit", "market", panel, "-o", str(tmp_path)), "--out", "is a folder")
    one_line_error(("fit", "market", panel, "-o", str(Path(panel) / "x" / "t.toml")), "--out", "is a file")
    one_line_error(("fit", "market", str(tmp_path / "nope.csv")), "nope.csv", "file not found")


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        (LOG.replace("1,email,", "1,fax,"), ("log.csv:2", "channel", "unknown channel", "'fax'", "email, sms")),
        (
            LOG.replace("2,email,2024-05-01T10:00:00,1,0", "2,email,2024-05-01T10:00:00,yes,0"),
            ("log.csv:3", "delivered", "'yes'", "1 or 0"),
        ),
        (
            LOG.replace("3,email,2024-05-01T10:00:00,0,0,0", "3,email,2024-05-01T10:00:00,0,0,2"),
            ("log.csv:4", "clicked", "'2'"),
        ),
        (
            LOG.replace("3,email,2024-05-01T10:00:00,0,0", "3,email,2024-05-01T10:00:00,0,1"),
            ("log.csv:4", "opened is 1 but delivered is 0"),
        ),
        (
            LOG.replace("2024-05-01T10:00:00,1,1", "yesterday,1,1"),
            ("log.csv:2", "sent_at", "'yesterday'", "ISO date and time"),
        ),
        (LOG.replace(",clicked", ""), ("log.csv:1", "missing column 'clicked'")),
        (LOG.splitlines()[0] + "\n", ("log.csv", "no rows")),
    ],
)
def test_bad_logs(tmp_path: Path, text: str, needles: tuple[str, ...]) -> None:
    out = tmp_path / "channels.toml"
    one_line_error(("fit", "channels", write(tmp_path, text, "log.csv"), "-o", str(out)), *needles)
    assert not out.exists()


def test_bad_inflation_option(tmp_path: Path) -> None:
    log = write(tmp_path, LOG, "log.csv")
    one_line_error(("fit", "channels", log, "--recorded-open-inflation", "fax=0.1"), "fax=0.1", "email, sms")
    one_line_error(("fit", "channels", log, "--recorded-open-inflation", "email=1.5"), "email=1.5", "[0, 1)")


def test_first_sends_keeps_each_customers_earliest_message(tmp_path: Path) -> None:
    later = LOG + "1,email,2024-05-08T10:00:00,1,0,0,0,0\n1,email,2024-04-30T10:00:00,0,0,0,0,0\n"
    out = tmp_path / "channels.toml"
    code, _, stderr = cli("fit", "channels", write(tmp_path, later, "log.csv"), "--first-sends", "-o", str(out))
    assert code == 0, stderr
    text = out.read_text(encoding="utf-8")
    assert "first send" in text
    # customer 1's first email (2024-04-30) was not delivered; customers 2 and 3 as in LOG: 1 of 3 delivered
    assert tomllib.loads(text)["channels"]["email"]["delivery_rate"] == pytest.approx(1 / 3, rel=1e-5)
