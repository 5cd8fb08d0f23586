"""The ``masssim`` command line.

Bad input (a scenario field, a missing file, a bad option) ends with one line on stderr and exit status 2,
never a traceback; an interrupted run leaves nothing that looks complete.

The commands import the library inside their bodies on purpose: `masssim --help` and a bad option answer at
once, without loading numpy, SimPy, numba kernels or plotly. cli.py is the top layer, so none of these imports
is needed to avoid a cycle (tests/test_layers.py checks there is none).
"""

from __future__ import annotations

import functools
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from masssim.config.errors import ScenarioError, ShardLost, one_line

EXIT_BAD_INPUT = 2


def _experiment_options(min_replications: int = 1):  # type: ignore[no-untyped-def]
    """Options shared by run, compare and sweep."""

    def decorate(command):  # type: ignore[no-untyped-def]
        options = [
            click.option(
                "--replications",
                "-r",
                type=click.IntRange(min_replications, 10_000),
                help="replications (default: the scenario's)",
            ),
            click.option(
                "--seed",
                "-s",
                type=click.IntRange(0, 2**63 - 1),
                help="root seed (default: the scenario's, else fresh)",
            ),
            click.option(
                "--workers",
                "-w",
                type=click.IntRange(1, 256),
                default=1,
                show_default=True,
                help="worker processes (with --shards on the local engine: threads running the shards at once)",
            ),
            click.option("--out", "-o", type=click.Path(path_type=Path), default=Path("results"), show_default=True),
            click.option("--until", help="add replications until METRIC's 95% CI half-width / |mean| <= X (METRIC:X)"),
            click.option("--max-replications", type=click.IntRange(2, 10_000), default=200, show_default=True),
            click.option("--engine", type=click.Choice(["local", "dask"]), default="local", show_default=True),
            click.option("--scheduler", help="Dask scheduler address, e.g. tcp://host:8786 (with --engine dask)"),
            click.option(
                "--shards",
                type=click.IntRange(1, 65_536),
                default=None,
                help="split each replication's customers into N shards (on the Dask workers with --engine dask, "
                "else in this process on --workers threads); the same results as without",
            ),
            click.option("--quiet", "-q", is_flag=True, help="print only the results folder (for scripts)"),
        ]

        @functools.wraps(command)
        def packed(**kwargs: Any) -> Any:
            names = ExperimentOptions.__dataclass_fields__
            opts = ExperimentOptions(**{name: kwargs.pop(name) for name in names})
            return command(opts=opts, **kwargs)

        wrapped: Any = packed
        for option in reversed(options):
            wrapped = option(wrapped)
        return wrapped

    return decorate


@dataclass(frozen=True)
class ExperimentOptions:
    """The options run, compare and sweep share, parsed once."""

    replications: int | None
    seed: int | None
    workers: int
    out: Path
    until: str | None
    max_replications: int
    engine: str
    scheduler: str | None
    shards: int | None
    quiet: bool

    def stop_rule(self) -> Any:
        from masssim.experiments.replications import StopRule

        return StopRule.parse(self.until, self.max_replications) if self.until else None

    def executor_args(self) -> dict[str, Any]:
        """Keyword arguments of masssim.run / compare / sweep."""
        return {
            "replications": self.replications,
            "seed": self.seed,
            "workers": self.workers,
            "until": self.stop_rule(),
            "engine": self.engine,
            "scheduler": self.scheduler,
            "shards": self.shards,
        }

    def refuse_unshardable(self, scenario: Any, path: Path) -> None:
        """With --shards, a one-line error before anything runs when ``scenario`` (read from ``path``)
        cannot run sharded."""
        if self.shards is not None:
            from masssim.experiments.replications import refuse_unshardable

            refuse_unshardable(scenario, file=str(path))

    def progress(self, label: str) -> _progress:
        console = Console(stderr=True)
        return _progress(console, not self.quiet and console.is_terminal, label)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="masssim")
def cli() -> None:
    """masssim: simulate and benchmark mass one-to-one marketing."""


@cli.command()
@click.argument("scenario", type=click.Path(path_type=Path))
@_experiment_options()
def run(scenario: Path, opts: ExperimentOptions) -> None:
    """Run SCENARIO (a file, or a gallery name) and write results/<scenario>/<run-id>/ with a report."""
    import masssim
    from masssim.reporting.results import check_output_dir

    loaded = _load(scenario)
    if loaded.sweep:
        raise ScenarioError(
            f"has a [sweep] table; run it with 'masssim sweep {scenario}'", file=str(scenario), field="sweep"
        )
    opts.refuse_unshardable(loaded, scenario)
    args = opts.executor_args()
    check_output_dir(opts.out)  # before simulating: a run must not find out an hour in that it cannot save
    with opts.progress(loaded.name) as advance:
        result = masssim.run(loaded, progress=advance, **args)
    run_dir = result.save(opts.out)
    if not opts.quiet:
        _print_lesson(loaded.lesson, arms=result.summary["arms"], market=result.summary.get("market"))
        _print_summary(result.summary)
        click.echo(f"\nresults: {run_dir}\nreport:  {run_dir / 'report.html'}")
    else:
        click.echo(str(run_dir))


@cli.command()
@click.argument("scenarios", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--variant", "-v", "variants", multiple=True, help="NAME:path=value[,path=value] (repeatable)")
@click.option("--baseline", help="label of the baseline (default: the first scenario)")
@_experiment_options(min_replications=2)
def compare(
    scenarios: tuple[Path, ...], variants: tuple[str, ...], baseline: str | None, opts: ExperimentOptions
) -> None:
    """Compare scenarios (or one scenario and --variant changes of it) with paired confidence intervals."""
    from masssim.experiments.compare import compare as run_compare
    from masssim.reporting.results import check_output_dir

    loaded = [_load(path) for path in scenarios]
    for path, one in zip(scenarios, loaded, strict=True):
        opts.refuse_unshardable(one, path)
    args = opts.executor_args()
    check_output_dir(opts.out)
    with opts.progress("compare") as advance:
        result = run_compare(
            loaded if len(loaded) > 1 else loaded[0],
            variants=list(variants) or None,
            baseline=baseline,
            progress=advance,
            **args,
        )
    run_dir = result.save(opts.out)
    if not opts.quiet:
        _print_lesson(loaded[0].lesson if len(loaded) == 1 else None, arms=result.summary["arms"])
        _print_comparison(result.summary)
        click.echo(f"\nresults: {run_dir}\nreport:  {run_dir / 'report.html'}")
    else:
        click.echo(str(run_dir))


@cli.command()
@click.argument("scenario", type=click.Path(path_type=Path))
@click.option("--param", "-p", "params", multiple=True, help="path=v1,v2,... (repeatable; the grid is the product)")
@click.option("--metric", "-m", default=None, help="metric to read and chart [default: the lesson's headline]")
@_experiment_options()
def sweep(scenario: Path, params: tuple[str, ...], metric: str | None, opts: ExperimentOptions) -> None:
    """Run a parameter grid; each cell is saved as it finishes, and a rerun resumes where it stopped."""
    from masssim.experiments.sweep import sweep as run_sweep

    loaded = _load(scenario)
    opts.refuse_unshardable(loaded, scenario)
    args = opts.executor_args()
    with opts.progress(f"sweep {loaded.name}") as advance:
        result = run_sweep(loaded, list(params) or None, out=opts.out, progress=advance, metric=metric, **args)
    computed = result.manifest.get("cells_computed_now", len(result.cells))
    if not opts.quiet:
        from masssim.reporting.narrative import read_sweep
        from masssim.reporting.report_sweep import sweep_metric

        if not params:
            _print_lesson(loaded.lesson, cells=result.cells)
        for line in read_sweep(result.grid, result.cells, sweep_metric(loaded, metric)):
            click.echo("- " + line)
    else:
        click.echo(str(result.directory))
        return
    click.echo(
        f"{len(result.cells)} cells ({computed} computed now, {len(result.cells) - computed} resumed)\n"
        f"results: {result.directory}\ntable:   {result.directory / 'sweep.csv'}\n"
        f"report:  {result.directory / 'report.html'}"
    )


@cli.command()
@click.argument("scenario", type=click.Path(path_type=Path))
@click.option(
    "--sharded",
    is_flag=True,
    help="also require that it can run with --shards (one replication across workers): an error if not",
)
def validate(scenario: Path, sharded: bool) -> None:
    """Check SCENARIO without running it."""

    from masssim.engine.sharded import sharding_problem
    from masssim.experiments.replications import refuse_unshardable
    from masssim.lessons.gallery import problems, resolve_scenario

    loaded = _load(scenario)
    problems(loaded, str(resolve_scenario(scenario)))
    if sharded:
        refuse_unshardable(loaded, file=str(scenario))
    arms = ", ".join(f"{a.name} ({a.policy})" for a in loaded.arms)
    click.echo(
        f"{scenario}: ok - {loaded.population.customers:,} customers, {loaded.horizon_days:g} days, "
        f"{loaded.replications} replication{'' if loaded.replications == 1 else 's'}, arms: {arms}"
    )
    market = loaded.market
    if "period_days" in market.model_fields_set and loaded.horizon_days < market.period_days:
        click.echo(
            f"note: the market's purchase rate is per {market.period_days:g} days and the run lasts "
            f"{loaded.horizon_days:g}: its market section covers the {loaded.horizon_days:g} days, with the "
            "Dirichlet's predictions for that shorter period"
        )
    # Whether --shards can run it, said at validation (docs/model.md §16.5): a note, since one process can.
    problem = sharding_problem(loaded)
    if problem is not None:
        click.echo(f"note: cannot run with --shards yet: {problem}")


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--metric", "-m", default=None, help="sweeps: metric to read and chart [default: as masssim sweep]")
def report(run_dir: Path, metric: str | None) -> None:
    """Rebuild report.html of a saved run, comparison or sweep from what was saved."""
    from masssim.experiments.saved import rebuild_report

    click.echo(f"report: {rebuild_report(run_dir, metric)}")


@cli.command()
@click.option("--dir", "directory", type=click.Path(path_type=Path), default=None, help="[default: the gallery]")
def scenarios(directory: Path | None) -> None:
    """List the scenario gallery: each lesson with its purpose and the command that runs it."""
    import masssim
    from masssim.lessons.gallery import GALLERY, command

    directory = directory if directory is not None else GALLERY
    if not directory.is_dir():
        raise ScenarioError("no such directory", file=str(directory), allowed="a folder of .toml scenario files")
    files = sorted(directory.glob("*.toml"))
    if not files:
        click.echo(f"{directory}: no scenarios")
        return
    for path in files:
        loaded = masssim.load_scenario(path)
        if loaded.lesson is not None:
            purpose = loaded.lesson.purpose
        else:  # not a lesson: the description's first sentence, whole
            purpose = " ".join(loaded.description.split()).split(". ")[0].rstrip(".") + "."
        click.echo(f"{path.stem}\n  {purpose}\n  $ {command(loaded, path=path)}")


@cli.group()
def lessons() -> None:
    """The gallery's lessons: run them all and check that what they claim holds."""


@lessons.command("check")
@click.option("--workers", "-w", type=click.IntRange(1, 256), default=2, show_default=True)
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None, help="keep results here [default: none]")
@click.option("--write-docs", type=click.Path(path_type=Path), default=None, help="refresh this file's lessons section")
@click.argument("names", nargs=-1)
def lessons_check(workers: int, out: Path | None, write_docs: Path | None, names: tuple[str, ...]) -> None:
    """Run every gallery lesson (or NAMES) as shipped; exit 1 if a claim does not hold."""
    from masssim.lessons.gallery import LessonRun, check, gallery_files, resolve_scenario
    from masssim.lessons.gallery import write_docs as refresh

    files = [resolve_scenario(name) for name in names] if names else gallery_files()
    for path in files:
        if not path.is_file():
            raise ScenarioError("no such lesson", file=str(path), allowed=", ".join(f.stem for f in gallery_files()))

    def report(run: LessonRun) -> None:
        click.echo(f"{run.name}: {'ok' if run.held else 'FAILED'} ({run.wall_time_s:.0f} s)  $ {run.command}")
        for claim in run.claims:
            click.echo(f"  {claim.sentence()}")

    runs = check(files, workers=workers, out=out, on_done=report)
    failed = [run.name for run in runs if not run.held]
    if write_docs is not None:
        refresh(write_docs, runs)
        click.echo(f"docs: {write_docs}")
    tail = f"; failed: {', '.join(failed)}" if failed else ""
    click.echo(f"{len(runs) - len(failed)} of {len(runs)} lessons held{tail}")
    if failed:
        sys.exit(1)


@cli.group()
def fit() -> None:
    """Estimate scenario tables from your own data: a purchase panel or a campaign log (docs/model.md)."""


@fit.command("market")
@click.argument("panel", type=click.Path(path_type=Path))
@click.option(
    "--customers",
    type=click.IntRange(1, 10**10),
    default=None,
    help="size of the population the panel's buyers came from, non-buyers included [default: estimated]",
)
@click.option(
    "--span-days", type=click.FloatRange(1.0, 36_500.0), help="days the panel covers [default: first to last date]"
)
@click.option("--ours", help="the brand that is ours (the scenario's first brand) [default: the biggest]")
@click.option(
    "--out",
    "-o",
    type=click.Path(path_type=Path),
    default=Path("market.toml"),
    show_default=True,
    help="file the [market] table is written to (replaced whole)",
)
def fit_market(panel: Path, customers: int | None, span_days: float | None, ours: str | None, out: Path) -> None:
    """Fit the NBD-Dirichlet (M, K, S, brand shares) to PANEL, a CSV of purchases, and write a [market] table.

    \b
    PANEL has a header row and one row per purchase, with columns
      customer  who bought (any identifier)
      brand     what they bought (2 to 32 brands)
      date      when, as an ISO date such as 2024-03-31

    Other columns are ignored. A panel lists only customers who bought: give --customers when you know how
    many customers it was drawn from, or the population is estimated (less precisely).
    """
    from masssim.fit.market import duplication_rows, estimate_lines, goodness_rows, market_toml, read_panel
    from masssim.fit.market import fit_market as run_fit

    _check_out_file(out)
    result = run_fit(read_panel(panel, ours=ours, span_days=span_days, customers=customers))
    text = market_toml(result)
    _write_table(out, text)
    for line in estimate_lines(result):
        click.echo("- " + line)
    _print_rows("Goodness of fit: observed in the panel / predicted by the fitted Dirichlet", *goodness_rows(result))
    duplication = duplication_rows(result)
    if duplication is not None:
        _print_rows("Duplication of purchase: observed / predicted", *duplication)
    for warning in result.warnings:
        click.echo("warning: " + warning)
    click.echo(f"table: {out}")


def _parse_inflation(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, float]:
    from masssim.config.schema import CHANNEL_NAMES

    out: dict[str, float] = {}
    for text in values:
        name, _, share = text.partition("=")
        try:
            value = float(share)
        except ValueError:
            value = math.nan
        if name not in CHANNEL_NAMES or not 0.0 <= value < 1.0:
            raise click.BadParameter(
                f"{text!r}: allowed CHANNEL=SHARE with CHANNEL one of {', '.join(CHANNEL_NAMES)} and SHARE in [0, 1)"
            )
        out[name] = value
    return out


@fit.command("channels")
@click.argument("log", type=click.Path(path_type=Path))
@click.option(
    "--recorded-open-inflation",
    "inflation",
    multiple=True,
    callback=_parse_inflation,
    help="CHANNEL=SHARE: share of delivered, unread messages the log records as opened (pre-fetch) "
    "[default: the channel's default, email 0.35, others 0; 0 if the log's opens are real reads]",
)
@click.option(
    "--first-sends",
    is_flag=True,
    help="count only each customer's first send on each channel (no fatigue yet: the rates the simulator means)",
)
@click.option(
    "--out",
    "-o",
    type=click.Path(path_type=Path),
    default=Path("channels.toml"),
    show_default=True,
    help="file the [channels.<name>] tables are written to (replaced whole)",
)
def fit_channels(log: Path, inflation: dict[str, float], first_sends: bool, out: Path) -> None:
    """Estimate each channel's delivery, open, click, unsubscribe and reply rates from LOG and write
    [channels.<name>] tables.

    \b
    LOG has a header row and one row per send, with columns
      customer      who was sent the message (any identifier)
      channel       email, sms, messaging or paid_social
      sent_at       when, as an ISO date and time such as 2024-03-31T09:30:00
      delivered     1 if delivered           (each flag: 1/0 or true/false)
      opened        1 if an open was recorded (pre-fetch included, as the platform records it)
      clicked       1 if clicked
      unsubscribed  1 if the customer unsubscribed after it (optional)
      replied       1 if the customer replied (optional)

    Rates are as the simulator means them: open rate per delivered, click and reply per read, unsubscribe
    per delivered; 95% Wilson intervals.
    """
    from masssim.fit.channels import channels_toml, fit_rows, read_log
    from masssim.fit.channels import fit_channels as run_fit

    _check_out_file(out)
    campaign = read_log(log, first_sends_only=first_sends)
    fits = run_fit(campaign, inflation)
    _write_table(out, channels_toml(campaign, fits))
    _print_rows("Channel rates, 95% Wilson intervals", *fit_rows(fits))
    for result in fits.values():
        for warning in result.warnings:
            click.echo("warning: " + warning)
    click.echo(f"table: {out}")


def _check_out_file(out: Path) -> None:
    """Before reading the data: the table must be writable as a file."""
    if out.is_dir():
        raise ScenarioError("is a folder", file=str(out), field="--out", allowed="a file path for the TOML table")
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ScenarioError(
            f"cannot be written: {parent} is a file", file=str(out), field="--out", allowed="a path inside a folder"
        )


def _write_table(out: Path, text: str) -> None:
    from masssim.reporting.results import atomic_write_text

    atomic_write_text(out, text)


def _print_rows(title: str, header: list[str], rows: list[list[str]]) -> None:
    table = Table(title=title)
    for i, column in enumerate(header):
        table.add_column(column, justify="left" if i == 0 else "right", overflow="fold")
    for row in rows:
        table.add_row(*row)
    Console().print(table)


@cli.command(context_settings={"show_default": True})
@click.option("--scenario", type=click.Choice(["offline", "server", "single-stream"]), default="server")
@click.option(
    "--target", "-t", default="python:keyword", help="python:NAME, python:pkg.mod:attr or http://host:port/path"
)
@click.option("--classifier-params", default=None, help="JSON object of the python: classifier's parameters")
@click.option("--rate", type=float, default=100.0, help="server: target queries per second (Poisson)")
@click.option("--duration", type=float, default=10.0, help="minimum measured seconds")
@click.option("--min-queries", type=int, default=100, help="minimum measured queries (offline: samples)")
@click.option("--warmup", type=float, default=1.0, help="seconds of warm-up, not measured")
@click.option("--latency-bound", type=float, default=None, help="seconds; server default 0.05")
@click.option("--percentile", type=float, default=99.0, help="the percentile held to the bound")
@click.option("--find-peak", is_flag=True, help="server: search the highest rate that passes")
@click.option("--timeout", type=float, default=2.0, help="seconds per request")
@click.option("--batch-size", type=int, default=None, help="samples per query [default: 1; offline 256]")
@click.option("--concurrency", type=int, default=2, help="offline: batches in flight")
@click.option("--max-outstanding", type=int, default=10_000, help="abort guard: queries in flight")
@click.option("--max-lateness", type=float, default=0.01, help="INVALID if p99 issue lateness exceeds this (s)")
@click.option("--max-errors", type=int, default=0, help="failed queries tolerated")
@click.option("--max-duration", type=float, default=None, help="single-stream: stop issuing after this many seconds")
@click.option("--samples", type=int, default=None, help="size of the sample pool")
@click.option("--unique-samples", is_flag=True, help="anti-caching: send each sample at most once")
@click.option("--messages", type=click.Path(path_type=Path), default=None, help="labelled .jsonl/.csv file")
@click.option("--needle-share", type=float, default=None, help="share of relevant synthetic messages")
@click.option("--difficulty", type=float, default=None, help="synthetic text difficulty in [0, 1]")
@click.option("--training-messages", type=int, default=5000, help="python: fit a trainable classifier on this many")
@click.option("--seed", "-s", type=click.IntRange(0, 2**63 - 1), default=None, help="root seed (default fresh)")
@click.option("--calibrate", type=click.Path(path_type=Path), default=None, help="offline: write a + b*batch here")
@click.option("--calibrate-batches", default="1,8,32,128,512", help="batch sizes measured by --calibrate")
@click.option("--out", "-o", type=click.Path(path_type=Path), default=Path("results"))
@click.option("--quiet", "-q", is_flag=True, help="print only the verdict line")
def bench(**options: Any) -> None:
    """Load-test a classifier (MLPerf-style scenarios). Exit 0 PASS, 1 FAIL or INVALID, 2 bad input."""
    from masssim.bench.cli_glue import bench_command

    sys.exit(bench_command(options, echo=click.echo))


@cli.command(context_settings={"show_default": True})
@click.option("--classifier", "-c", default="keyword", help="registered classifier name or module:attr")
@click.option("--classifier-params", default=None, help="JSON object of the classifier's parameters")
@click.option("--port", "-p", type=click.IntRange(0, 65535), default=8080, help="0 = any free port")
@click.option("--max-request-bytes", type=click.IntRange(1, 1 << 30), default=1 << 20, help="larger bodies get 413")
@click.option("--max-texts", type=click.IntRange(1, 10_000_000), default=10_000, help="texts per request at most")
@click.option("--training-messages", type=click.IntRange(0, 10_000_000), default=5000)
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0)
def serve(**options: Any) -> None:
    """Serve a classifier over HTTP on 127.0.0.1 (POST /classify, GET /health) until interrupted."""
    from masssim.bench.cli_glue import serve_command

    serve_command(options, echo=click.echo)


def _load(scenario: Path) -> Any:
    """A scenario file, or a gallery scenario by name (masssim.lessons.gallery.resolve_scenario)."""
    import masssim
    from masssim.lessons.gallery import resolve_scenario

    return masssim.load_scenario(resolve_scenario(scenario))


class _progress:
    """A rich progress bar over the whole run, fed the completed share; silent when not on a terminal."""

    def __init__(self, console: Console, show: bool, label: str) -> None:
        self.show = show
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=not show,
            transient=True,
        )
        self.label = label

    def __enter__(self) -> Any:
        if not self.show:
            return None
        self.progress.start()
        task = self.progress.add_task(self.label, total=1.0)
        return lambda share: self.progress.update(task, completed=share)

    def __exit__(self, *exc: object) -> None:
        if self.show:
            self.progress.stop()


def _print_lesson(
    lesson: Any, *, arms: dict[str, Any] | None = None, cells: Any = (), market: dict[str, Any] | None = None
) -> None:
    """A gallery lesson's reading first: purpose, headline metrics, and whether each claim held."""
    from masssim.reporting.lesson_reading import Source, read_lesson

    if lesson is None:
        return
    console = Console()
    lines = read_lesson(lesson, Source(arms=arms, cells=cells, market=market))
    console.print(lines[0], style="bold", highlight=False)
    for line in lines[1:]:
        console.print("- " + line, highlight=False)
    console.print()


def _print_summary(summary: dict[str, Any]) -> None:
    from masssim.reporting.narrative import money, read_summary

    console = Console()
    table = Table(title=f"{summary['scenario']}: {summary['replications']} replications, mean [95% CI]")
    for column in (
        "arm",
        "incremental profit",
        "incremental revenue",
        "cost",
        "ROI",
        "click rate",
        "attributed / true",
    ):
        table.add_column(column, justify="right" if column != "arm" else "left", overflow="fold")

    def cell(stat: dict[str, Any]) -> str:
        if stat.get("ci_low") is None:
            return money(stat["mean"])
        return f"{money(stat['mean'])} [{money(stat['ci_low'])}, {money(stat['ci_high'])}]"

    for arm, m in summary["arms"].items():
        table.add_row(
            arm,
            cell(m["incremental_profit"]),
            cell(m["incremental_revenue"]),
            money(m["cost_total"]["mean"]),
            f"{m['roi']['mean']:.2f}",
            f"{100 * m['click_rate']['mean']:.2f}%",
            f"{m['attributed_purchases']['mean']:,.0f} / {m['incremental_purchases_true']['mean']:,.0f}",
        )
    console.print(table)
    for line in read_summary(summary):
        console.print("- " + line, highlight=False)
    _print_inbound(console, summary, "arm")


def _print_inbound(console: Console, summary: dict[str, Any], first_column: str) -> None:
    """A second table for the inbound desk (find -> classify -> respond), only when the run found mentions."""
    from masssim.reporting.narrative import count, duration, has_inbound, money, percent, read_inbound

    if not has_inbound(summary):
        return
    columns = (
        ("volume", "inbound_volume", count),
        ("precision", "classifier_precision", percent),
        ("recall", "classifier_recall", percent),
        ("response p50", "response_time_p50_s", duration),
        ("response p90", "response_time_p90_s", duration),
        ("SLA (routed)", "sla_attainment", percent),
        ("needles in SLA", "needle_sla_attainment", percent),
        ("missed needles", "missed_needles", count),
        ("abandoned", "abandonment_share", percent),
        ("satisfaction", "satisfaction", percent),
        ("cost_inbound", "cost_inbound", money),
    )
    # One column per arm (strategy), one row per figure: ten figures side by side do not fit a terminal.
    table = Table(title="Inbound (find -> classify -> respond): mean [95% CI]")
    table.add_column(f"figure \\ {first_column}", justify="left", overflow="fold")
    for label in summary["arms"]:
        table.add_column(label, justify="right", overflow="fold")

    def cell(stat: dict[str, Any], fmt: Any) -> str:
        if stat.get("ci_low") is None:
            return str(fmt(stat["mean"]))
        return f"{fmt(stat['mean'])} [{fmt(stat['ci_low'])}, {fmt(stat['ci_high'])}]"

    for title, metric, fmt in columns:
        table.add_row(title, *(cell(m[metric], fmt) for m in summary["arms"].values()))
    console.print(table)
    for line in read_inbound(summary):
        console.print("- " + line, highlight=False)


def _print_comparison(summary: dict[str, Any]) -> None:
    from masssim.reporting.narrative import inbound_first, money, read_inbound_differences, read_summary

    console = Console()
    if inbound_first(summary):
        # A comparison of inbound settings: the desk's verdict and table come first.
        for line in read_inbound_differences(summary):
            console.print("- " + line, highlight=False)
        _print_inbound(console, summary, "strategy")
    base = summary["baseline_arm"]
    table = Table(title=f"{summary['replications']} paired replications; difference vs '{base}' [95% CI]")
    for column in ("strategy", "incremental profit", "difference", "clear?", "click rate", "cost"):
        # fold, never cut: at 80 columns two labels cut to the same "no_declared/..." could not be told apart
        table.add_column(column, justify="left" if column == "strategy" else "right", overflow="fold")
    for label, m in summary["arms"].items():
        diff = summary["differences_vs_baseline"].get(label)
        if diff is None:
            shown, clear = "baseline", ""
        else:
            d = diff["incremental_profit"]
            low, high = d.get("ci_low"), d.get("ci_high")
            shown = money(d["mean"]) if low is None else f"{money(d['mean'])} [{money(low)}, {money(high)}]"
            clear = {True: "yes", False: "no", None: "n/a"}[d.get("excludes_zero")]
        table.add_row(
            label,
            money(m["incremental_profit"]["mean"]),
            shown,
            clear,
            f"{100 * m['click_rate']['mean']:.2f}%",
            money(m["cost_total"]["mean"]),
        )
    console.print(table)
    for line in read_summary(summary):
        console.print("- " + line, highlight=False)
    if not inbound_first(summary):
        _print_inbound(console, summary, "strategy")


def main(argv: list[str] | None = None) -> None:
    """Entry point: turns every input problem into one line on stderr and exit status 2."""
    try:
        cli.main(args=argv, prog_name="masssim", standalone_mode=False)
    except ScenarioError as exc:
        click.echo(f"masssim: error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except click.UsageError as exc:
        hint = f" (try '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        click.echo(f"masssim: error: {exc.format_message()}{hint}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except OSError as exc:  # the file system refused (a full disk, a folder that went read-only mid-run)
        where = exc.filename if exc.filename is not None else "masssim"
        click.echo(f"masssim: error: {one_line(str(where))}: {one_line(exc.strerror or str(exc))}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except ShardLost as exc:  # a worker died: what was lost, in one line, and nothing written
        click.echo(f"masssim: error: {exc}", err=True)
        sys.exit(1)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except (click.Abort, KeyboardInterrupt, SystemError) as exc:
        if isinstance(exc, SystemError) and not interrupted_inside(exc):
            raise
        click.echo("masssim: interrupted; no complete result was written", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)


def interrupted_inside(exc: BaseException) -> bool:
    """Whether ``exc`` is a Ctrl-C that compiled code wrapped: numba's dispatcher turns a KeyboardInterrupt raised
    while it loads a cached kernel (``_numba_unpickle``) into a ``SystemError`` caused by it."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False
