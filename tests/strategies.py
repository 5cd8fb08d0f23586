"""Hypothesis strategies: valid scenario dicts, and ways to break them (each naming the field it breaks)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

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
    name = draw(identifier.filter(lambda n: n not in {"random", "broadcast", "segments", "oracle"}))
    data = base_scenario()
    data["arms"] = [{"name": "a", "policy": "broadcast"}, {"name": "b", "policy": name}]
    return data, "arms[1].policy"


def _known_keys() -> set[str]:
    """Every field name at any level of the schema (derived from it, so new fields are never 'unknown')."""
    from masssim.scenario import field_names

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
