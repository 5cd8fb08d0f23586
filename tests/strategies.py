"""Hypothesis strategies: valid scenario dicts, and ways to break them (each naming the field it breaks)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from masssim.policies.registry import targeting_names

# (dotted path, a bad value, why it is bad) — each must be rejected naming that path.
BAD_VALUES: list[tuple[str, Any]] = [
    ("population.customers", 0),
    ("population.customers", -5),
    ("population.customers", "many"),
    ("population.customers", 3.5),
    ("population.customers", True),
    ("population.persona_signal", 1.5),
    ("population.persona_signal", -0.1),
    ("population.persona_signal", "high"),
    ("population.taste_tail_dof", 2.0),
    ("population.taste_dims", 0),
    ("horizon_days", 0),
    ("horizon_days", 10_000),
    ("replications", 0),
    ("holdout.share", 0.0),
    ("holdout.share", 1.0),
    ("schedule.send_hour", 24),
    ("schedule.channel", "fax"),
    ("schedule.wave_every_days", 0),
    ("channels.email.open_rate", 1.2),
    ("channels.sms.quiet_hours_start", 25),
    ("channels.paid_social.cpm", -1.0),
    ("market.price", 0),
    ("market.dirichlet_s", -1),
    ("creatives.count", 0),
    ("response.affinity_click_beta", -1.0),
    ("attribution.window_days", 0),
    ("budget_total", -10.0),
    ("seed", -1),
    ("feedback_bucket_minutes", 7),
    ("name", ""),
    ("name", 5),
]

TOP_LEVEL_TABLES = [
    "population",
    "market",
    "channels",
    "response",
    "creatives",
    "schedule",
    "holdout",
    "attribution",
]


def set_path(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``data`` with the dotted ``path`` set to ``value`` (intermediate tables created)."""
    import copy

    out = copy.deepcopy(data)
    node = out
    parts = path.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def base_scenario() -> dict[str, Any]:
    return {"name": "prop", "population": {"customers": 1_000}}


identifier = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=3, max_size=12)
junk_values = st.one_of(
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=5),
    st.booleans(),
    st.lists(st.integers(), max_size=3),
)


@st.composite
def unknown_key(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A scenario with an extra key somewhere; returns (data, dotted path of the extra key)."""
    table = draw(st.sampled_from(["", *TOP_LEVEL_TABLES]))
    key = draw(identifier.filter(lambda k: k not in KNOWN_KEYS))
    path = f"{table}.{key}" if table else key
    return set_path(base_scenario(), path, draw(junk_values)), path


@st.composite
def wrong_type(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A numeric field given text, a list or a table."""
    path = draw(st.sampled_from(NUMERIC_PATHS))
    value = draw(
        st.one_of(
            st.text(max_size=4),
            st.lists(st.integers(), max_size=2),
            st.dictionaries(identifier, st.integers(), max_size=1),
        )
    )
    return set_path(base_scenario(), path, value), path


@st.composite
def unknown_policy(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    registered = set(targeting_names())  # derived from the registry, so a new built-in is never "unknown"
    name = draw(identifier.filter(lambda n: n not in registered))
    data = base_scenario()
    data["arms"] = [{"name": "a", "policy": "broadcast"}, {"name": "b", "policy": name}]
    return data, "arms[1].policy"


def _known_keys() -> set[str]:
    """Every field name at any level of the schema (derived from it, so new fields are never 'unknown')."""
    from masssim.config.validation import field_names

    keys: set[str] = set(TOP_LEVEL_TABLES)
    for path in field_names():
        keys.update(part.removesuffix("[]") for part in path.split("."))
    return keys


KNOWN_KEYS = _known_keys()

NUMERIC_PATHS = [
    "population.customers",
    "population.persona_signal",
    "horizon_days",
    "replications",
    "holdout.share",
    "market.price",
    "channels.email.open_rate",
    "creatives.count",
    "schedule.send_hour",
]


# --- arbitrary input for the bad-input properties (issue 10) -------------------------------------------------

# Any text at all as a key: brackets, dots, quotes, 'function-...', control characters, other scripts.
any_key = st.text(max_size=12)
toml_scalars = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.booleans(),
    st.datetimes(),
    st.dates(),
    st.times(),
)


@st.composite
def deep_value(draw: st.DrawFn, max_depth: int = 80) -> Any:
    """A scalar inside up to ``max_depth`` levels of arrays and tables (past MAX_DEPTH = 32 sometimes)."""
    value: Any = draw(toml_scalars)
    for as_list in draw(st.lists(st.booleans(), max_size=max_depth)):
        value = [value] if as_list else {draw(any_key): value}
    return value


toml_values = st.one_of(
    st.recursive(
        toml_scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_key, inner, max_size=3),
        max_leaves=8,
    ),
    deep_value(),
)

# Tables of the schema where any key not in the schema is an error, as (path, location) pairs.
STRICT_TABLES: list[tuple[str, tuple[Any, ...]]] = [
    ("", ()),
    ("population", ("population",)),
    ("market", ("market",)),
    ("channels.email", ("channels", "email")),
    ("response", ("response",)),
    ("creatives", ("creatives",)),
    ("schedule", ("schedule",)),
    ("holdout", ("holdout",)),
    ("diagnostics", ("diagnostics",)),
    ("inbound", ("inbound",)),
    ("inbound.core", ("inbound", "core")),
    ("inbound.outcomes", ("inbound", "outcomes")),
    ("arms[0]", ("arms", 0)),  # an arm's extra keys are its policy's parameters: 'broadcast' takes none
]


@st.composite
def one_odd_key(draw: st.DrawFn) -> tuple[dict[str, Any], tuple[Any, ...]]:
    """A valid scenario plus one key (any characters, any value) the schema does not know, and its location."""
    data: dict[str, Any] = {
        "name": "prop",
        "population": {"customers": 1_000},
        "inbound": {"core": {}, "outcomes": {}},
        "arms": [{"name": "a", "policy": "broadcast"}],
    }
    _, loc = draw(st.sampled_from(STRICT_TABLES))
    key = draw(any_key.filter(lambda k: k not in KNOWN_KEYS))
    node: Any = data
    for part in loc:
        node = node[part] if isinstance(part, int) else node.setdefault(part, {})
    node[key] = draw(toml_values)
    return data, (*loc, key)


@st.composite
def toml_text(draw: st.DrawFn) -> str:
    """Text that is often TOML and often not: arbitrary text, bracket runs, or a document of any keys."""
    kind = draw(st.sampled_from(["text", "brackets", "document"]))
    if kind == "text":
        return draw(st.text(max_size=200))
    if kind == "brackets":
        opener = draw(st.sampled_from(["[", "{a=", "[{a=["]))
        return 'name = "x"\nv = ' + opener * draw(st.integers(0, 1500)) + draw(st.text(max_size=5))
    import tomli_w

    doc = draw(st.dictionaries(any_key, toml_values, max_size=4))
    if draw(st.booleans()):
        doc["name"] = draw(st.sampled_from(["ok", "..", ".", "a/b", "", "x" * 100]))
    try:
        return tomli_w.dumps(doc)
    except (TypeError, ValueError):  # a document tomli_w cannot write (e.g. a time with a zone): plain text then
        return repr(doc)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
# The fields of a labelled message, so that random rows are often nearly right.
MESSAGE_FIELDS = ["text", "relevant", "intent", "urgency", "language"]
message_objects = st.dictionaries(st.sampled_from(MESSAGE_FIELDS) | st.text(max_size=8), json_values, max_size=6)
# Characters str.splitlines() breaks on: a generated line must stay one line.
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
one_line_text = st.text(alphabet=st.characters(blacklist_characters=LINE_BREAKS), max_size=60)


@st.composite
def jsonl_line(draw: st.DrawFn) -> str:
    """One line of a JSONL file: an object of (mostly) message fields, any JSON, deep nesting, or any text."""
    kind = draw(st.sampled_from(["object", "json", "deep", "text"]))
    if kind == "object":
        return json.dumps(draw(message_objects), ensure_ascii=True)
    if kind == "json":
        return json.dumps(draw(json_values), ensure_ascii=True)
    if kind == "deep":
        return "[" * draw(st.integers(0, 3000)) + "]" * draw(st.integers(0, 3000))
    return draw(one_line_text)


@st.composite
def csv_line(draw: st.DrawFn) -> str:
    """One CSV row of (mostly) three cells, quotes, over-long fields or any text."""
    kind = draw(st.sampled_from(["cells", "long", "text"]))
    if kind == "cells":
        cells = draw(st.lists(one_line_text, min_size=1, max_size=4))
        return ",".join(draw(st.sampled_from([c, '"' + c.replace('"', '""') + '"', '"' + c])) for c in cells)
    if kind == "long":
        return '"' + "a" * draw(st.integers(10_000, 140_000)) + '",true,complaint'
    return draw(one_line_text)


@st.composite
def http_body(draw: st.DrawFn) -> bytes:
    """A POST body for /classify: any bytes, any JSON, deep nesting, or {"texts": ...} of anything."""
    kind = draw(st.sampled_from(["bytes", "json", "deep", "texts"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    if kind == "deep":
        return (draw(st.sampled_from(["[", '{"texts": ['])) * draw(st.integers(0, 3000))).encode()
    texts = draw(st.one_of(st.lists(st.text(max_size=30), max_size=60), json_values))
    return json.dumps({"texts": texts}).encode("utf-8", "surrogatepass")


# Paths a user might type after --variant / --param: real ones, near misses and anything at all.
override_paths = st.one_of(
    st.sampled_from(
        ["seed", "population.customers", "arms[0].name", "arms[9].x", "arms.broadcast.policy", "arms.*.segments"]
    ),
    st.from_regex(r"\A[a-z_*]{0,10}(\[[0-9a-z]{0,3}\])?(\.[a-z_*\[\]0-9]{0,10}){0,3}\Z"),
    st.text(max_size=20),
)
override_values = st.one_of(st.sampled_from(["1", "0.5", "true", '"x"', "[1, 2]", "sms", "inf", "nan"]), one_line_text)


@st.composite
def command_line_override(draw: st.DrawFn) -> tuple[str, str]:
    """(option, text) for compare --variant, sweep --param or run --until, often nearly right."""
    option = draw(st.sampled_from(["--variant", "--param", "--until"]))
    if draw(st.integers(0, 4)) == 0:
        return option, draw(one_line_text)
    path, value = draw(override_paths), draw(override_values)
    if option == "--variant":
        return option, f"{draw(st.sampled_from(['v', 'b2', '', 'a/b', '..']))}:{path}={value}"
    if option == "--param":
        return option, f"{path}={value},{draw(override_values)}"
    return option, f"{path}:{value}"
