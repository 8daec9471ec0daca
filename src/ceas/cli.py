"""The ``ceas`` command line: ``run``, ``validate``, ``plot``, ``presets``, ``reproduce``, ``sweep``, ``map``.

User mistakes (bad config values, unknown keys, bad flags, missing files, a run folder that already exists) end with
one line on stderr naming the problem and exit status 2, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

try:  # typer >= 0.2x vendors click; older releases depend on it
    from typer._click import exceptions as click_exc
except ImportError:  # pragma: no cover - depends on the installed typer
    from click import exceptions as click_exc

from ceas.errors import CeasError

app = typer.Typer(
    name="ceas",
    help="Train distributed quantum neural networks over a simulated quantum network (CEAS).",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

INTERRUPTED = 130  # the shell's status for a process stopped by SIGINT (128 + 2)


class Interrupted(CeasError):
    """Ctrl-C stopped a command; the message says what was kept (exit status 130, not 2)."""


ConfigArg = Annotated[
    str, typer.Argument(help="a TOML config file or a preset name (paper, quick)")
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="override a value: section.key=value (repeatable)"),
]
PluginOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--plugin",
        "-p",
        help="import a module that registers aggregators, attacks, policies, topologies, entanglers or partition "
        "schemes (repeatable; entry points of group ceas.plugins load always)",
    ),
]


BackendOpt = Annotated[
    str,
    typer.Option(
        help="where the grid's cells run: local (a process pool of --workers) or ray (a local Ray instance of "
        "--workers CPUs, or the cluster at --address; extra 'ray')"
    ),
]
AddressOpt = Annotated[
    str | None,
    typer.Option(
        help="with --backend ray: the cluster to join, auto or HOST:PORT (default: start a local one)"
    ),
]
RetriesOpt = Annotated[
    int, typer.Option(min=0, max=10, help="extra attempts of a failed cell before it is reported")
]


def _config(config: str, overrides: list[str] | None, plugins: list[str] | None):
    """Load the plugins (entry points and --plugin), then the config they may name."""
    from ceas.config import load_config
    from ceas.plugins import activate

    activate(plugins or [])
    return load_config(config, overrides or [])


@app.command()
def run(
    config: ConfigArg,
    set_: SetOpt = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="continue the run from its last checkpoint")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="replace an existing run folder")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
    plugin: PluginOpt = None,
) -> None:
    """Train as configured; results go to <run.out_dir>/<run.name>/."""
    from ceas.experiment.runner import RunInterrupted
    from ceas.experiment.runner import run as run_experiment

    cfg = _config(config, set_, plugin)
    try:
        result = run_experiment(cfg, resume=resume, overwrite=overwrite, progress=not quiet)
    except RunInterrupted as exc:
        raise Interrupted(str(exc)) from None
    s = result.summary
    acc = s["final_test_accuracy"]
    typer.echo(
        f"{cfg.run.name}: {s['rounds']} rounds, final test accuracy "
        f"{'n/a' if acc is None else f'{acc:.4f}'} -> {result.run_dir}"
    )


@app.command()
def validate(config: ConfigArg, set_: SetOpt = None, plugin: PluginOpt = None) -> None:
    """Check a config file (and overrides) without running anything."""
    cfg = _config(config, set_, plugin)
    typer.echo(f"{config}: valid (digest {cfg.digest()[:12]})")


@app.command()
def show(config: ConfigArg, set_: SetOpt = None, plugin: PluginOpt = None) -> None:
    """Print the fully resolved configuration as TOML (defaults filled in)."""
    from ceas.config import to_toml

    typer.echo(to_toml(_config(config, set_, plugin)), nl=False)


@app.command()
def plot(run_dir: Annotated[Path, typer.Argument(help="a run folder (runs/<name>)")]) -> None:
    """Redraw a run's accuracy plot from its metrics."""
    from ceas.experiment.plots import plot_accuracy
    from ceas.experiment.store import METRICS, read_metrics

    path = run_dir / METRICS
    if not path.exists():
        raise CeasError(
            f"run folder {str(run_dir)!r} has no {METRICS}; allowed: a folder written by 'ceas run'"
        )
    plot_accuracy(read_metrics(path), run_dir / "accuracy.png", title=run_dir.name)
    typer.echo(str(run_dir / "accuracy.png"))


@app.command()
def reproduce(
    quick: Annotated[
        bool, typer.Option("--quick", help="small configuration (minutes on 2 cores)")
    ] = False,
    seeds: Annotated[
        int | None, typer.Option(min=1, max=100, help="seeds per scenario (default 5; quick 2)")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="results folder")] = None,
    workers: Annotated[int, typer.Option(min=1, max=256, help="parallel runs")] = 2,
    set_: SetOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
    fresh: Annotated[
        bool,
        typer.Option(
            "--fresh",
            help="rerun every run instead of reusing finished ones (a finished run is reused only for the same "
            "config, code version and plugins)",
        ),
    ] = False,
    plugin: PluginOpt = None,
    backend: BackendOpt = "local",
    address: AddressOpt = None,
    retries: RetriesOpt = 2,
) -> None:
    """Reproduce the headline comparison (CEAS vs random selection and oblivious baselines under attack)."""
    from ceas.experiment.reproduce import reproduce as run_reproduce
    from ceas.plugins import activate

    activate(plugin or [])
    res = run_reproduce(
        "paper",
        quick=quick,
        seeds=seeds,
        out=out,
        workers=workers,
        overrides=set_ or [],
        progress=not quiet,
        fresh=fresh,
        backend=backend,
        address=address,
        retries=retries,
    )
    typer.echo((res["out"] / "report.md").read_text())
    typer.echo(res["grid"].line())
    typer.echo(f'results in {res["out"]} (query: ceas results query {res["out"]} "SQL")')


@app.command()
def sweep(
    vary: Annotated[
        str,
        typer.Option(
            help="the value to vary: section.key=v1,v2,... (TOML literals; lists in [...] are kept whole)"
        ),
    ],
    scenarios: Annotated[
        str, typer.Option(help="comma-separated scenarios of `ceas reproduce` to compare")
    ] = "ceas,random-fedavg",
    quick: Annotated[
        bool, typer.Option("--quick", help="the small configuration of `reproduce --quick`")
    ] = False,
    seeds: Annotated[int, typer.Option(min=1, max=100, help="seeds per value and scenario")] = 3,
    out: Annotated[Path | None, typer.Option(help="results folder")] = None,
    workers: Annotated[int, typer.Option(min=1, max=256, help="parallel runs")] = 2,
    set_: SetOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
    fresh: Annotated[
        bool,
        typer.Option(
            "--fresh",
            help="rerun every run instead of reusing finished ones (a finished run is reused only for the same "
            "config, code version and plugins)",
        ),
    ] = False,
    plugin: PluginOpt = None,
    backend: BackendOpt = "local",
    address: AddressOpt = None,
    retries: RetriesOpt = 2,
) -> None:
    """Vary one value (Byzantine fraction, coherence, Dirichlet alpha, attack, N, ...) and compare scenarios at each."""
    from ceas.experiment.sweep import sweep as run_sweep
    from ceas.plugins import activate

    activate(plugin or [])
    res = run_sweep(
        "paper",
        vary,
        scenarios=[s.strip() for s in scenarios.split(",") if s.strip()],
        seeds=seeds,
        out=out,
        quick=quick,
        workers=workers,
        overrides=set_ or [],
        progress=not quiet,
        fresh=fresh,
        backend=backend,
        address=address,
        retries=retries,
    )
    typer.echo((res["out"] / "report.md").read_text())
    typer.echo(res["grid"].line())
    typer.echo(f'results in {res["out"]} (query: ceas results query {res["out"]} "SQL")')


@app.command()
def schemes(
    seeds: Annotated[int, typer.Option(min=1, max=100, help="seeds per scheme and policy")] = 5,
    quick: Annotated[bool, typer.Option("--quick", help="15 rounds, 4 minibatches per round")] = False,
    out: Annotated[Path | None, typer.Option(help="results folder")] = None,
    workers: Annotated[int, typer.Option(min=1, max=256, help="parallel runs")] = 2,
    set_: SetOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="rerun every run instead of reusing finished ones")
    ] = False,
    plugin: PluginOpt = None,
    backend: BackendOpt = "local",
    address: AddressOpt = None,
    retries: RetriesOpt = 2,
) -> None:
    """Compare the data-, unitary- and circuit-level schemes (SPEC §7) on the same network, CEAS vs random scheduling."""
    from ceas.experiment.schemes import compare_schemes
    from ceas.plugins import activate

    activate(plugin or [])
    res = compare_schemes(
        seeds=seeds, out=out, quick=quick, workers=workers, overrides=set_ or [], progress=not quiet,
        fresh=fresh, backend=backend, address=address, retries=retries,
    )  # fmt: skip
    typer.echo((res["out"] / "report.md").read_text())
    typer.echo(res["grid"].line())
    typer.echo(f'results in {res["out"]} (query: ceas results query {res["out"]} "SQL")')


@app.command("map")
def map_(
    x: Annotated[
        str | None,
        typer.Option(
            help="supply axis: section.key=v1,v2,... (default network.link.eta0=0.05,0.15,0.5: link rate; "
            "scheduling.payload_copies for larger payloads)"
        ),
    ] = None,
    y: Annotated[
        str | None,
        typer.Option(
            help="coherence axis: memory coherence time / round time, comma-separated (default 0.5,5,50)"
        ),
    ] = None,
    attacks: Annotated[
        str, typer.Option(help="comma-separated attack settings: none, adaptive")
    ] = "none,adaptive",
    quick: Annotated[
        bool,
        typer.Option(
            "--quick", help="2x2 map of the small configuration, 2 seeds (about 30 s on 2 cores)"
        ),
    ] = False,
    seeds: Annotated[
        int | None, typer.Option(min=1, max=100, help="paired seeds per cell (default 5; quick 2)")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="results folder")] = None,
    workers: Annotated[int, typer.Option(min=1, max=256, help="parallel runs")] = 2,
    set_: SetOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="rerun every run instead of reusing finished ones")
    ] = False,
    plugin: PluginOpt = None,
    backend: BackendOpt = "local",
    address: AddressOpt = None,
    retries: RetriesOpt = 2,
) -> None:
    """Regime map: CEAS − (same defences, oblivious scheduling) over supply/demand × coherence/round, with and
    without the adaptive attack."""
    from ceas.experiment.regime_map import regime_map
    from ceas.plugins import activate

    activate(plugin or [])
    try:
        ratios = [float(v) for v in y.split(",")] if y else None
    except ValueError:
        raise CeasError(
            f"--y {y!r} is not allowed; allowed: comma-separated numbers > 0, e.g. 0.5,5,50"
        ) from None
    res = regime_map(
        "paper", x=x, y=ratios, attacks=[a.strip() for a in attacks.split(",") if a.strip()], quick=quick,
        seeds=seeds, out=out, workers=workers, overrides=set_ or [], progress=not quiet, fresh=fresh,
        backend=backend, address=address, retries=retries,
    )  # fmt: skip
    typer.echo((res["out"] / "report.md").read_text())
    typer.echo(f'results in {res["out"]} (query: ceas results query {res["out"]} "SQL")')


results_app = typer.Typer(help="A grid's results as one dataset.", no_args_is_help=True)
app.add_typer(results_app, name="results")


@results_app.command("query")
def results_query(
    path: Annotated[
        Path, typer.Argument(help="a grid's folder (reproduce, sweep) or its dataset/ folder")
    ],
    sql: Annotated[
        str,
        typer.Argument(
            help='SQL over the table results, e.g. "SELECT scenario, avg(test_accuracy) '
            'FROM results GROUP BY scenario"'
        ),
    ],
    format_: Annotated[
        str, typer.Option("--format", help="table (aligned text), csv or json (one object per row)")
    ] = "table",
) -> None:
    """Query every round of every cell of a grid with SQL (DuckDB); the table is called results."""
    from ceas.experiment.dataset import format_rows, query

    columns, rows = query(path, sql)
    typer.echo(format_rows(columns, rows, format_), nl=False)


network_app = typer.Typer(help="The quantum network layer on its own.", no_args_is_help=True)
app.add_typer(network_app, name="network")


@network_app.command("simulate")
def network_simulate(
    config: ConfigArg,
    duration: Annotated[float, typer.Option(help="simulated seconds (> 0)")] = 10.0,
    rate: Annotated[float, typer.Option(min=0.0, help="pairs wanted per link per second")] = 10.0,
    min_fidelity: Annotated[
        float | None, typer.Option(help="only pairs at least this good are used")
    ] = None,
    plot: Annotated[Path | None, typer.Option(help="write a PNG of the report here")] = None,
    set_: SetOpt = None,
    plugin: PluginOpt = None,
) -> None:
    """Simulate the network under a simple demand; print per-link supply, fidelity at use, expiries, utilisation."""
    from rich.console import Console

    from ceas.network.simulate import Demand, plot_report, report_table, simulate

    cfg = _config(config, set_, plugin)
    report = simulate(
        cfg.network,
        duration,
        seed=cfg.run.seed,
        demand=Demand(rate_hz=rate, min_fidelity=min_fidelity),
    )
    Console(width=None if sys.stdout.isatty() else 160).print(report_table(report))
    if plot is not None:
        plot_report(report, plot)
        typer.echo(str(plot))


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app, turning user errors into one line and exit status 2."""
    try:
        status = app(args=argv, prog_name="ceas", standalone_mode=False)
    except Interrupted as exc:
        print(f"ceas: {exc}", file=sys.stderr)
        return INTERRUPTED
    except KeyboardInterrupt:  # outside typer's own handling (e.g. while importing)
        print("ceas: interrupted", file=sys.stderr)
        return INTERRUPTED
    except CeasError as exc:
        for line in str(exc).splitlines() or ["error"]:
            print(f"ceas: error: {line}", file=sys.stderr)
        return 2
    except (
        OSError
    ) as exc:  # an output folder that cannot be made, a full disk, a file we may not read
        where = f" {exc.filename!r}" if exc.filename else ""
        print(f"ceas: error: cannot access{where}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except click_exc.NoArgsIsHelpError as exc:
        print(exc.format_message() if hasattr(exc, "format_message") else "", file=sys.stderr)
        return 2
    except click_exc.UsageError as exc:
        print(f"ceas: error: {exc.format_message()}", file=sys.stderr)
        return 2
    except typer.Abort:
        print("ceas: aborted", file=sys.stderr)
        return 130
    except typer.Exit as exc:
        return exc.exit_code
    if (
        status == INTERRUPTED
    ):  # typer turns Ctrl-C outside a run's rounds into Exit(130) and returns it
        print("ceas: interrupted", file=sys.stderr)
        return INTERRUPTED
    return status if isinstance(status, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
