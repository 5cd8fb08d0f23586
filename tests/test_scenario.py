"""Scenario validation: every bad input is one ScenarioError naming file, field, value and what is allowed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import given, settings
from hypothesis import strategies as st

import masssim
from masssim.config.schema import CHANNEL_DEFAULTS
from masssim.config.validation import field_names
from masssim.scenario.load import load_scenario, scenario_from_toml
from strategies import BAD_VALUES, base_scenario, set_path, unknown_key, unknown_policy, wrong_type

REPO = Path(__file__).resolve().parents[1]


def error_for(data: Any) -> masssim.ScenarioError:
    with pytest.raises(masssim.ScenarioError) as info:
        masssim.scenario_from_dict(data, file="s.toml")
    return info.value


def test_defaults_fill_everything() -> None:
    scenario = masssim.scenario_from_dict({"name": "x"})
    assert scenario.population.customers == 100_000
    assert scenario.channels.email.open_rate == CHANNEL_DEFAULTS["email"]["open_rate"]
    assert [a.policy for a in scenario.arms] == ["broadcast"]


def test_channel_override_keeps_other_defaults() -> None:
    scenario = masssim.scenario_from_dict({"name": "x", "channels": {"email": {"open_rate": 0.3}}})
    assert scenario.channels.email.open_rate == 0.3
    assert scenario.channels.email.click_to_open == CHANNEL_DEFAULTS["email"]["click_to_open"]
    assert scenario.channels.sms.quiet_hours_start == 21


@pytest.mark.parametrize(("path", "value"), BAD_VALUES)
def test_bad_value_names_field_value_and_allowed(path: str, value: Any) -> None:
    err = error_for(set_path(base_scenario(), path, value))
    assert err.file == "s.toml"
    assert err.field == path.replace(".email.", ".email.").replace("channels.", "channels."), str(err)
    text = str(err)
    assert text.startswith("s.toml: " + path)
    assert "\n" not in text


def test_range_message_reads_well() -> None:
    err = error_for(set_path(base_scenario(), "population.persona_signal", 1.5))
    assert str(err) == (
        "s.toml: population.persona_signal: value not allowed (got 1.5); allowed: a number in [0, 1] "
        "(rho: share of taste variance that observables explain)"
    )


def test_unknown_key_gets_did_you_mean() -> None:
    err = error_for(set_path(base_scenario(), "population.persona_sigal", 0.3))
    assert err.field == "population.persona_sigal"
    assert "did you mean 'persona_signal'" in str(err)


def test_unknown_channel_is_rejected_with_hint() -> None:
    err = error_for(set_path(base_scenario(), "channels.emial", {"open_rate": 0.2}))
    assert err.field == "channels.emial"
    assert "did you mean 'email'" in str(err)


def test_unknown_policy_lists_allowed() -> None:
    data = base_scenario()
    data["arms"] = [{"name": "a", "policy": "segmnts"}]
    err = error_for(data)
    assert err.field == "arms[0].policy"
    assert "did you mean 'segments'" in str(err)
    assert "broadcast" in (err.allowed or "")


def test_policy_parameters_are_validated() -> None:
    data = base_scenario()
    data["arms"] = [{"name": "a", "policy": "segments", "segments": 0}]
    err = error_for(data)
    assert err.field == "arms[0].segments"
    data["arms"] = [{"name": "a", "policy": "segments", "segmets": 4}]
    err = error_for(data)
    assert err.field == "arms[0].segmets"
    assert "did you mean 'segments'" in str(err)


def test_cross_field_checks() -> None:
    err = error_for(
        set_path(
            base_scenario(),
            "market.brands",
            [{"name": "ours", "market_share": 0.5}, {"name": "b", "market_share": 0.2}],
        )
    )
    assert err.field == "market.brands"
    assert "sum to 1" in str(err)
    err = error_for(set_path(base_scenario(), "channels.email.quiet_hours_start", 22))
    assert err.field == "channels.email.quiet_hours_start"
    err = error_for({"name": "x", "arms": [{"name": "a", "policy": "random"}, {"name": "a", "policy": "oracle"}]})
    assert err.field == "arms"


def test_empty_file_not_toml_missing_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    with pytest.raises(masssim.ScenarioError) as info:
        load_scenario(empty)
    assert info.value.field == "name" and str(empty) in str(info.value)
    broken = tmp_path / "broken.toml"
    broken.write_text("name = 'x'\n[population\ncustomers = 5\n")
    with pytest.raises(masssim.ScenarioError, match="not valid TOML"):
        load_scenario(broken)
    with pytest.raises(masssim.ScenarioError, match="file not found"):
        load_scenario(tmp_path / "nope.toml")
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00name")
    with pytest.raises(masssim.ScenarioError, match="UTF-8"):
        load_scenario(binary)


def test_missing_name_is_named() -> None:
    err = error_for({"population": {"customers": 1000}})
    assert err.field == "name"
    assert "required" in str(err)


def test_resolved_scenario_round_trips() -> None:
    scenario = masssim.scenario_from_dict({"name": "x", "arms": [{"name": "p", "policy": "segments", "segments": 3}]})
    again = scenario_from_toml(tomli_w.dumps(scenario.to_toml_dict()))
    assert again == scenario


def test_every_field_is_documented_in_model_md() -> None:
    doc = (REPO / "docs" / "model.md").read_text(encoding="utf-8")
    missing = [f for f in field_names() if f"`{f}`" not in doc]
    assert not missing, f"fields missing from docs/model.md: {missing}"


# --- Property tests: no malformed scenario ever escapes as anything but a ScenarioError naming the field ---


@settings(max_examples=150, deadline=None)
@given(unknown_key())
def test_property_unknown_keys(case: tuple[dict[str, Any], str]) -> None:
    data, path = case
    err = error_for(data)
    assert err.field == path


@settings(max_examples=100, deadline=None)
@given(wrong_type())
def test_property_wrong_types(case: tuple[dict[str, Any], str]) -> None:
    data, path = case
    err = error_for(data)
    assert err.field == path


@settings(max_examples=50, deadline=None)
@given(unknown_policy())
def test_property_unknown_policies(case: tuple[dict[str, Any], str]) -> None:
    data, path = case
    err = error_for(data)
    assert err.field == path


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_property_arbitrary_text_never_crashes(text: str) -> None:
    try:
        scenario_from_toml(text, file="fuzz.toml")
    except masssim.ScenarioError as err:
        assert str(err).startswith("fuzz.toml")
        assert "\n" not in str(err).split(": ", 1)[0]


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from([p for p, _ in BAD_VALUES]),
    st.one_of(
        st.integers(-(10**12), 10**12),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=3),
        st.none(),
    ),
)
def test_property_any_value_is_accepted_or_named(path: str, value: Any) -> None:
    """Whatever goes into a field, the result is a valid scenario or an error naming that field."""
    if value is None:
        return  # TOML cannot express null
    data = set_path(base_scenario(), path, value)
    try:
        masssim.scenario_from_dict(data, file="s.toml")
    except masssim.ScenarioError as err:
        assert err.field is not None and (err.field == path or path.startswith(err.field)), (err.field, path)
