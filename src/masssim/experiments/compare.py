"""``masssim compare``: is A better than B, by how much, and how sure are we.

Each variant is a scenario (another file, or the base scenario with dotted-path overrides). All variants
are simulated with one root seed, so replication r of every variant has the same customers, holdout and
purchase occasions whenever their population settings agree: differences are paired replication by
replication, and their confidence intervals are much narrower than comparing two independent means.
A scenario with several arms contributes one compared strategy per arm ("variant/arm").
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tomli_w

from masssim.config.errors import ScenarioError
from masssim.config.overrides import describe, parse_value, split_assignment
from masssim.config.schema import Scenario
from masssim.estimation.intervals import mean_ci, paired_difference, welch_difference
from masssim.experiments.replications import (
    Executor,
    ProgressCallback,
    Replication,
    StopRule,
    build_manifest,
    refuse_unshardable,
    replicate,
    resolve_entropy,
)
from masssim.model.market import arm_market_section, market_section
from masssim.model.metrics import ALL, REGISTRY
from masssim.reporting.results import (
    _clean,
    atomic_write_text,
    dumps_json,
    holdout_summary,
    pool_summary,
    publish_directory,
)
from masssim.scenario.load import apply_overrides

_LABEL = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")  # labels become file names: no '/' and no '..'


@dataclass
class Variant:
    label: str
    scenario: Scenario
    overrides: dict[str, Any] = field(default_factory=dict)


def parse_variant(text: str, base: Scenario, *, source: str = "--variant") -> Variant:
    """``NAME:path=value[,path=value]`` -> a Variant of ``base`` (validated)."""
    name, sep, rest = text.partition(":")
    name = name.strip()
    if name and not _LABEL.match(name):
        raise ScenarioError("a variant name may use letters, digits, '_', '-' and '.' only", file=source, value=name)
    if not sep or not name or not rest.strip():
        raise ScenarioError(
            "expected NAME:path=value[,path=value]",
            file=source,
            value=text,
            allowed="e.g. personas16:arms.personas.segments=16",
        )
    overrides: dict[str, Any] = {}
    for assignment in _split_top_level(rest):
        path, value = split_assignment(assignment, source=f"{source} {name}")
        overrides[path] = parse_value(value)
    scenario = apply_overrides(base, overrides, source=f"{source} {name}")
    return Variant(label=name, scenario=scenario, overrides=overrides)


def _split_top_level(text: str) -> list[str]:
    """Split on commas that start a new ``path=`` (a list value like [1,2] keeps its commas)."""
    pieces: list[str] = []
    depth = 0
    current = ""
    for char in text:
        depth += char in "[{"
        depth -= char in "]}"
        if char == "," and depth == 0:
            pieces.append(current)
            current = ""
        else:
            current += char
    pieces.append(current)
    return [p for p in (s.strip() for s in pieces) if p]


@dataclass
class CompareResult:
    """Per compared strategy (variant, or variant/arm) and metric: mean and 95% CI over replications, and
    the paired difference against the baseline."""

    variants: list[Variant]
    baseline: str
    seed_entropy: int
    replications: list[list[Replication]]  # per variant, per replication
    manifest: dict[str, Any] = field(default_factory=dict)

    def strategies(self) -> list[tuple[str, int, str]]:
        """(label, variant index, arm name) for every compared strategy, in order."""
        out = []
        for i, variant in enumerate(self.variants):
            arms = [a.name for a in variant.scenario.arms]
            for arm in arms:
                out.append((variant.label if len(arms) == 1 else f"{variant.label}/{arm}", i, arm))
        return out

    def values(self, label: str, metric: str) -> list[float]:
        for name, i, arm in self.strategies():
            if name == label:
                return [rep[arm].metrics[metric] for rep in self.replications[i]]
        raise KeyError(label)

    @functools.cached_property
    def summary(self) -> dict[str, Any]:
        strategies = self.strategies()
        labels = [s[0] for s in strategies]
        out: dict[str, Any] = {
            "kind": "comparison",
            "replications": len(self.replications[0]),
            "seed_entropy": str(self.seed_entropy),
            "confidence": 0.95,
            "baseline_arm": self.baseline,
            "variants": {
                label: {
                    "scenario": self.variants[i].scenario.name,
                    "arm": arm,
                    "policy": next(a.policy for a in self.variants[i].scenario.arms if a.name == arm),
                    "overrides": describe(self.variants[i].overrides),
                    "changed": list(self.variants[i].overrides),
                }
                for label, i, arm in strategies
            },
            "units": {name: REGISTRY[name].unit for name in ALL},
            "arms": {},
            "differences_vs_baseline": {},
        }
        for label in labels:
            out["arms"][label] = {
                m: {**mean_ci(self.values(label, m), bounds=REGISTRY[m].bounds), "values": self.values(label, m)}
                for m in ALL
            }
        base = self.baseline
        for label in labels:
            if label != base:
                out["differences_vs_baseline"][label] = {
                    m: paired_difference(self.values(label, m), self.values(base, m), bounds=REGISTRY[m].bounds)
                    for m in ALL
                }
        lesson = self.variants[0].scenario.lesson
        if lesson is not None:
            out["lesson"] = lesson.model_dump(mode="json")
        pools = {}
        for label, i, arm in strategies:
            by_arm = pool_summary(self.replications[i], [arm])
            if by_arm:
                pools[label] = by_arm[arm]
        if pools:
            out["pools"] = pools
        # Every brand's buying without marketing, per variant (a variant may change the market itself).
        markets = {}
        for variant, reps in zip(self.variants, self.replications, strict=True):
            tallies = [rep[variant.scenario.arms[0].name].market for rep in reps]
            if tallies and all(t is not None for t in tallies):
                markets[variant.label] = market_section(variant.scenario, tallies)  # type: ignore[arg-type]
                # And under each of the variant's arms' marketing.
                by_arm = {a.name: [rep[a.name].arm_market for rep in reps] for a in variant.scenario.arms}
                if all(t is not None for counts in by_arm.values() for t in counts):
                    markets[variant.label]["by_arm"] = arm_market_section(
                        variant.scenario,
                        tallies,  # type: ignore[arg-type]
                        by_arm,  # type: ignore[arg-type]
                    )
        if markets:
            out["markets"] = markets
        holdout = {}
        for label, i, arm in strategies:
            by_arm = holdout_summary(self.replications[i], [arm], self.seed_entropy, self.variants[i].scenario)
            if by_arm:
                holdout[label] = by_arm[arm]
        if holdout:
            out["holdout"] = holdout
        return _json_ready(out)

    def unpaired_difference(self, label: str, metric: str) -> dict[str, Any]:
        """The same difference analysed as if the runs were independent (Welch), to show what pairing buys."""
        return welch_difference(self.values(label, metric), self.values(self.baseline, metric))

    def save(self, out_dir: str | Path = "results", run_id: str | None = None) -> Path:
        # plotly is imported only when a report is written (start-up speed)
        from masssim.reporting.report_compare import render_comparison

        name = self.variants[0].scenario.name
        run_id = run_id or f"compare-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{self.seed_entropy % 16**6:06x}"

        def write(partial: Path) -> None:
            for variant in self.variants:
                atomic_write_text(
                    partial / "variants" / f"{variant.label}.toml", tomli_w.dumps(variant.scenario.to_toml_dict())
                )
            atomic_write_text(partial / "summary.json", dumps_json(self.summary))
            atomic_write_text(partial / "manifest.json", dumps_json(self.manifest))
            atomic_write_text(partial / "report.html", render_comparison(self.summary))

        return publish_directory(Path(out_dir) / name, run_id, write)


def _json_ready(data: dict[str, Any]) -> dict[str, Any]:
    cleaned: dict[str, Any] = _clean(data)
    return cleaned


def compare(
    scenarios: Sequence[Scenario] | Scenario,
    *,
    variants: Sequence[str] | dict[str, dict[str, Any]] | None = None,
    baseline: str | None = None,
    replications: int | None = None,
    seed: int | None = None,
    workers: int = 1,
    until: StopRule | str | None = None,
    progress: ProgressCallback | None = None,
    engine: str = "local",
    scheduler: str | None = None,
    shards: int | None = None,
) -> CompareResult:
    """Compare several scenarios, or one scenario and variants of it, with paired replications.

    ``variants``: ``["NAME:path=value,..."]`` strings or ``{NAME: {path: value}}``; the unmodified scenario is
    then the baseline, labelled by its lesson's ``baseline`` name if it has one, else by the scenario's name
    (a label says what the strategy is: "baseline" would only say where it sits). ``baseline`` picks another
    baseline by label. ``shards`` splits each replication's customers into that many shards, with the same
    results (docs/model.md §16); a variant that cannot run sharded raises ScenarioError before anything runs.
    """
    base_list = [scenarios] if isinstance(scenarios, Scenario) else list(scenarios)
    if not base_list:
        raise ValueError("compare needs at least one scenario")
    chosen: list[Variant] = []
    if variants:
        if len(base_list) != 1:
            raise ScenarioError("--variant applies to one scenario; give one scenario file with variants")
        base = base_list[0]
        chosen.append(Variant(base.lesson.baseline if base.lesson and base.lesson.baseline else base.name, base))
        if isinstance(variants, dict):
            for name, overrides in variants.items():
                if not _LABEL.match(name):
                    raise ScenarioError("a variant name may use letters, digits, '_', '-' and '.' only", value=name)
                scenario = apply_overrides(base_list[0], overrides, source=f"variant {name}")
                chosen.append(Variant(name, scenario, dict(overrides)))
        else:
            chosen += [parse_variant(text, base_list[0]) for text in variants]
    else:
        if len(base_list) < 2:
            raise ScenarioError(
                "nothing to compare", allowed="two or more scenario files, or one with --variant NAME:path=value"
            )
        chosen = [Variant(s.name, s) for s in base_list]
    _make_labels_unique(chosen)
    result_stub = CompareResult(chosen, baseline="", seed_entropy=0, replications=[[] for _ in chosen])
    labels = [s[0] for s in result_stub.strategies()]
    base_label = baseline if baseline is not None else labels[0]
    if base_label not in labels:
        raise ScenarioError("unknown baseline", file="--baseline", value=base_label, allowed=", ".join(labels))
    if shards is not None:
        for variant in chosen:
            refuse_unshardable(variant.scenario, file=f"--variant {variant.label}" if variant.overrides else None)
    n = replications if replications is not None else chosen[0].scenario.replications
    rule = StopRule.parse(until) if isinstance(until, str) else until
    entropy = resolve_entropy(seed, chosen[0].scenario.seed)
    started = time.perf_counter()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    with Executor(workers, engine=engine, scheduler=scheduler, shards=shards) as executor:
        results = replicate([v.scenario for v in chosen], entropy, n, executor, until=rule, progress=progress)
    manifest = build_manifest(
        chosen[0].scenario.name,
        entropy=entropy,
        replications=len(results[0]),
        workers=workers,
        wall_time_s=time.perf_counter() - started,
        started_at=started_at,
        until=rule,
        engine=engine,
        shards=shards,
        kind="comparison",
        variants={v.label: describe(v.overrides) or v.scenario.name for v in chosen},
    )
    return CompareResult(chosen, base_label, entropy, results, manifest)


def _make_labels_unique(variants: list[Variant]) -> None:
    seen: dict[str, int] = {}
    for variant in variants:
        count = seen.get(variant.label, 0)
        seen[variant.label] = count + 1
        if count:
            variant.label = f"{variant.label}-{count + 1}"
