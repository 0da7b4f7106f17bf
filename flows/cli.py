"""The `nianbao` command: a thin layer over the library. Prefect is imported only by commands
that orchestrate (ingest, harvest, serve), never by `parse`.

Exit statuses: 0 done; 1 a document or portal failed (the run's Prefect state is Failed too);
2 a usage error (bad option, bad URL, bad portals.toml); 3 the database could not be used;
4 the raw store could not be written (disk full, not writable); 5 the Prefect server could not
be reached or started. Errors are one line; `--debug` shows the traceback.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.table import Table

    from nianbao.harvest.portals import Portal
    from nianbao.parsers.result import Fact, ParseResult

EXIT_FAILED_DOCUMENTS = 1
EXIT_USAGE = 2
EXIT_DATABASE = 3
EXIT_STORAGE = 4
EXIT_PREFECT = 5
# Off a terminal, an ingest prints its progress every this many documents.
PROGRESS_EVERY = 50

app = typer.Typer(
    help="nianbao: parse China's government information-disclosure annual reports into a warehouse.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
_debug = False


@app.callback()
def _options(
    debug: Annotated[
        bool, typer.Option("--debug", help="show tracebacks and Prefect's own log lines")
    ] = False,
) -> None:
    global _debug
    _debug = debug


def _die(status: int, message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(status)


@contextmanager
def _errors_as_exit_statuses() -> Iterator[None]:
    """Library errors become one line and the exit status of their kind (traceback: --debug)."""
    from nianbao.harvest.rawstore import StorageError
    from nianbao.schema.db import DatabaseUnavailable, DatabaseUrlError, mask_secrets

    try:
        yield
    except (typer.Exit, typer.BadParameter, KeyboardInterrupt):
        raise
    except Exception as exc:
        if _debug:
            raise
        from sqlalchemy.exc import DBAPIError

        from nianbao.flows.orchestrator import NoPrefectServer, OrchestratorUnavailable
        from nianbao.schema.db import describe_db_error

        if isinstance(exc, DatabaseUrlError | NoPrefectServer):
            raise _die(EXIT_USAGE, str(exc)) from None
        if isinstance(exc, DatabaseUnavailable):
            raise _die(EXIT_DATABASE, str(exc)) from None
        if isinstance(exc, DBAPIError):
            raise _die(EXIT_DATABASE, f"database error: {describe_db_error(exc)}") from None
        if isinstance(exc, StorageError):
            raise _die(EXIT_STORAGE, str(exc)) from None
        if isinstance(exc, OrchestratorUnavailable):
            raise _die(EXIT_PREFECT, str(exc)) from None
        message = mask_secrets(f"{type(exc).__name__}: {exc}".splitlines()[0])
        raise _die(1, f"{message} (a bug in nianbao? run with --debug and report it)") from None


def _print_summary(result: ParseResult) -> None:
    from rich.console import Console

    console = Console()
    console.print(
        f"[bold]{result.source}[/bold]  ({result.format}, {result.bytes} bytes, status {result.status})"
    )
    console.print(
        f"agency: {result.agency} ({result.agency_source or '—'}, "
        f"{result.level or '—'}, {result.region_code or '—'})   "
        f"year: {result.year}   template: {result.template}"
    )
    console.print(
        "sections: " + ", ".join(f"{s.code} ({s.heading or '—'})" for s in result.sections)
    )
    # The national tables in print order, then whatever else holds facts (2008: statistics, prose).
    tables = dict.fromkeys(
        ["active_disclosure", "applications", "review_litigation"] + [f.table for f in result.facts]
    )
    for table_code in tables:
        facts = [f for f in result.facts if f.table == table_code]
        if facts:
            console.print(_fact_grid(table_code, facts))
    failed = [c for c in result.checks if not c.ok]
    console.print(f"checks: {len(result.checks)} evaluated, {len(failed)} failed")
    for check in failed:
        console.print(f"  [red]{check.rule}[/red] {check.scope}: {check.detail}")
    for problem in result.problems:
        console.print(f"  [yellow]{problem.code}[/yellow]: {problem.message}")


def _fact_grid(table_code: str, facts: list[Fact]) -> Table:
    """One table's facts as printed rows × columns; `·` is a printed blank."""
    from rich.table import Table

    columns = list(dict.fromkeys(f.col for f in facts))
    grid = Table(title=table_code, show_lines=False)
    grid.add_column("row")
    for column in columns:
        grid.add_column(column, justify="right")
    for row in dict.fromkeys(f.row for f in facts):
        cells = {f.col: f for f in facts if f.row == row}
        grid.add_row(
            row,
            *[
                ("·" if cells[c].value is None else str(cells[c].value)) if c in cells else ""
                for c in columns
            ],
        )
    return grid


NoOcrOption = Annotated[
    bool,
    typer.Option("--no-ocr", help="do not OCR image-only PDF pages (they stay no_text_layer)"),
]


def _set_ocr(no_ocr: bool) -> None:
    # Through the environment, so the parser processes an ingest starts inherit it.
    if no_ocr:
        os.environ["NIANBAO_OCR"] = "off"


NoPinOption = Annotated[
    bool,
    typer.Option(
        "--no-pin-workers",
        help="let the parser workers run on any core (by default each is pinned to a core "
        "no other run's worker holds)",
    ),
]


def _set_pinning(no_pin: bool) -> None:
    # As --no-ocr: the setting is read where the flow starts its parser pool.
    if no_pin:
        os.environ["NIANBAO_PIN_WORKERS"] = "off"


@app.command()
def parse(
    paths: Annotated[
        list[Path], typer.Argument(help="report files: PDF, DOCX, DOC/WPS, HTML, text")
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="one JSON object per document (JSON Lines)")
    ] = False,
    no_ocr: NoOcrOption = False,
) -> None:
    """Parse reports and print what was found.

    Example:
        nianbao parse samples/huzhu-employment-2023.pdf
        nianbao parse --json samples/*.docx samples/*.html > facts.jsonl
    """
    from nianbao.parsers.report import parse_file

    _set_ocr(no_ocr)
    failed = False
    for path in paths:
        result = parse_file(str(path))
        failed |= result.status == "failed"
        if as_json:
            sys.stdout.write(result.json_line())
        else:
            _print_summary(result)
    raise typer.Exit(1 if failed else 0)


@app.command(name="eval")
def evaluate_command(
    roots: Annotated[
        list[Path], typer.Argument(help="folders holding documents and their *.canon.json gold")
    ] = None,  # type: ignore[assignment]
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="list every wrong cell")] = False,
) -> None:
    """Score parsed facts against every gold file and print cell accuracy.

    Example:
        nianbao eval samples/
    """
    from nianbao.flows.evaluate import evaluate, evaluate_metadata, metadata_summary

    scores = evaluate(roots or [Path("samples")])
    who = evaluate_metadata(roots or [Path("samples")])
    if not scores:
        typer.echo("no gold files found", err=True)
        raise typer.Exit(2)
    total = right = 0
    for score in scores:
        total += score.cells
        right += score.right
        flags = []
        if score.metadata_errors:
            flags.append("metadata: " + "; ".join(score.metadata_errors))
        if score.missing_sections:
            flags.append("missing sections: " + ", ".join(score.missing_sections))
        typer.echo(
            f"{score.accuracy:8.2%}  {score.right:4d}/{score.cells:<4d} {score.path}  {' | '.join(flags)}"
        )
        if verbose:
            for line in score.wrong:
                typer.echo(f"          {line}")
    # Before the overall line, which stays the last: scripts read it.
    for score in who:
        if score.wrong:
            typer.echo(f"          {score.path}: " + "; ".join(score.wrong))
    if who:
        typer.echo(f"          {metadata_summary(who)}")
    typer.echo(
        f"{right / total:8.2%}  {right:4d}/{total:<4d} overall cell accuracy over {len(scores)} documents"
    )
    perfect = right == total and not any(s.metadata_errors or s.missing_sections for s in scores)
    perfect = perfect and not any(s.wrong for s in who)
    raise typer.Exit(0 if perfect else 1)


DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="SQLAlchemy URL of the warehouse (default: $NIANBAO_DB or sqlite:///nianbao.db)",
    ),
]


def _workers(value: int) -> int:
    if value < 1:
        raise typer.BadParameter("must be at least 1")
    return value


def _seconds(value: float) -> float:
    if not value > 0:
        raise typer.BadParameter("must be a number of seconds above 0")
    return value


WorkersOption = Annotated[
    int, typer.Option("--workers", "-w", help="parser processes", callback=_workers)
]


def _database(db: str | None) -> str:
    """The warehouse URL to use, checked; its password stays in this process's environment."""
    from sqlalchemy.engine import make_url

    from nianbao.schema.db import DB_URL_ENV, DatabaseUrlError, check_db_url, resolve_db_url

    url = resolve_db_url(db)
    try:
        check_db_url(url)
    except DatabaseUrlError as exc:
        raise typer.BadParameter(str(exc), param_hint="--db") from None
    if make_url(url).password:
        # Flow parameters carry the URL without its password (Prefect shows and stores them);
        # the flow, in this process or a run's subprocess, completes it from here.
        os.environ[DB_URL_ENV] = url
    return url


def _preflight(url: str, raw_dir: str | Path | None) -> None:
    """Fail in a second, with one line, on what would fail the run after Prefect's start-up:
    a database that cannot be used, a raw store that cannot be written."""
    from nianbao.harvest.rawstore import RawStore, resolve_raw_root
    from nianbao.schema.db import connect_or_explain

    connect_or_explain(url)
    RawStore(resolve_raw_root(raw_dir)).check_writable()


def _quiet_prefect() -> None:
    """Prefect's own console lines only with --debug; nianbao's warnings always."""
    # The CLI owns its terminal: Prefect's lines (tracebacks of failed tasks included) go to
    # the Prefect API, and here only with --debug.
    os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = "INFO" if _debug else "CRITICAL"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("nianbao: %(message)s"))
    logger = logging.getLogger("nianbao")
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)


def _announce() -> None:
    """The first line, before anything slow is imported: a temporary server takes seconds."""
    configured = os.environ.get("PREFECT_API_URL")
    typer.echo(
        f"nianbao: using the Prefect server at {configured}"
        if configured
        else "nianbao: starting a temporary Prefect server (set PREFECT_API_URL to use yours)…",
        err=True,
    )


def _orchestrated(run: Callable[[], Any], url: str, raw_dir: str | Path | None) -> Any:
    """Check the warehouse and the raw store, start (or reach) the Prefect server, mark runs
    that died as Crashed, then `run()`.

    The command has said what it is doing (`_announce`) before calling this.
    """
    started = time.monotonic()
    _preflight(url, raw_dir)
    _quiet_prefect()
    from nianbao.flows.orchestrator import configure_prefect

    configure_prefect()  # before Prefect is first imported: it reads its settings then
    from nianbao.flows.orchestrator import mark_crashed_runs, prefect_api

    with prefect_api():
        typer.echo(f"nianbao: Prefect ready in {time.monotonic() - started:.1f} s", err=True)
        crashed = mark_crashed_runs()
        if crashed:
            typer.echo(
                f"nianbao: marked {len(crashed)} run(s) of killed processes as Crashed", err=True
            )
        state = run()
    result = state.result(raise_on_failure=False)
    if isinstance(result, BaseException):
        raise result
    return result


RawDirOption = Annotated[
    str | None,
    typer.Option(
        "--raw-dir",
        help="raw store root, a folder or an fsspec URL (default: $NIANBAO_RAW or ./raw)",
    ),
]


ClusterOption = Annotated[
    str | None,
    typer.Option(
        "--cluster",
        help="parse and load on Dask: a scheduler (tcp://host:8786) or `local` for a Dask "
        "cluster of --workers processes here, started once for the run",
    ),
]


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="files or folders (searched recursively)")],
    db: DbOption = None,
    workers: WorkersOption = 1,
    raw_dir: RawDirOption = None,
    cluster: ClusterOption = None,
    timeout: Annotated[
        float, typer.Option("--timeout", help="seconds one document may take", callback=_seconds)
    ] = 120.0,
    no_ocr: NoOcrOption = False,
    no_pin_workers: NoPinOption = False,
) -> None:
    """Parse reports and load them into the warehouse, then print a summary.

    Exit status: 0 done, 1 a document failed, 2 usage, 3 database, 4 raw store, 5 Prefect.

    Example:
        nianbao ingest samples/
        nianbao ingest /data/reports --db postgresql+psycopg://etl@db/warehouse --workers 4
        nianbao ingest /data/reports --db postgresql+psycopg://etl@db/warehouse \\
            --cluster tcp://scheduler:8786 --raw-dir s3://bucket/raw
    """
    for path in paths:
        if not path.exists():
            raise typer.BadParameter(f"{path} does not exist", param_hint="PATHS")
    _set_ocr(no_ocr)
    _set_pinning(no_pin_workers)
    _announce()
    url = _database(db)
    with _errors_as_exit_statuses():

        def run() -> Any:
            from nianbao.flows.ingest import ingest_flow_on
            from nianbao.parsers.pool import DocumentLimits
            from nianbao.schema.db import public_db_url

            return _run_with_progress(
                lambda progress: ingest_flow_on(cluster, workers)(
                    [str(p) for p in paths],
                    public_db_url(url),
                    workers,
                    raw_dir=raw_dir,
                    limits=DocumentLimits(seconds=timeout),
                    on_progress=progress,
                    cluster=cluster,
                    return_state=True,
                )
            )

        summary = _orchestrated(run, url, raw_dir)
    typer.echo(f"warehouse: {_safe_url(url)}")
    for line in summary.lines():
        typer.echo(line)
    if summary.stopped:
        raise typer.Exit(EXIT_DATABASE)
    raise typer.Exit(EXIT_FAILED_DOCUMENTS if summary.failed else 0)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _run_with_progress(run):
    """A rich progress bar on a terminal; plain log lines otherwise."""
    if not sys.stderr.isatty():
        printed = -1  # the count last printed

        def log(done: int, total: int) -> None:
            # A line at the start, whenever the count passes a multiple of PROGRESS_EVERY (a
            # batch seldom ends on one), and at the end; a count already printed, not again.
            nonlocal printed
            if not total or done == printed:
                return
            if printed < 0 or done == total or done // PROGRESS_EVERY > printed // PROGRESS_EVERY:
                typer.echo(f"progress: {done}/{total} documents", err=True)
                printed = done

        return run(log)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=False,
    ) as bar:
        task_id = bar.add_task("ingest", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task_id, completed=done, total=total)

        return run(update)


PortalsOption = Annotated[
    Path,
    typer.Option("--portals", help="portals.toml: the annual-report columns to harvest"),
]
DelayOption = Annotated[
    float, typer.Option("--delay", help="seconds between two requests to one host")
]


def _load_portals_or_exit(path: Path) -> list[Portal]:
    from nianbao.harvest.portals import PortalsError, load_portals

    try:
        return load_portals(path)
    except PortalsError as exc:
        raise typer.BadParameter(str(exc), param_hint="--portals") from None


@app.command()
def harvest(
    portals: PortalsOption,
    years: Annotated[
        str | None,
        typer.Option("--years", help="only reports of these years: 2019-2023, or 2023"),
    ] = None,
    db: DbOption = None,
    workers: WorkersOption = 1,
    raw_dir: RawDirOption = None,
    delay: DelayOption = 1.0,
    cluster: ClusterOption = None,
    no_pin_workers: NoPinOption = False,
) -> None:
    """Crawl the portals' annual-report columns, download what is new and ingest it.

    A run stopped half way continues where it stopped when started again. Exit status: 0 done,
    1 a portal or a harvested document failed, 2 usage, 3 database, 4 raw store, 5 Prefect.

    Example:
        nianbao harvest --portals portals.toml
        nianbao harvest --portals portals.toml --years 2019-2023
        nianbao harvest --portals portals.toml --db postgresql+psycopg://etl@db/warehouse \\
            --raw-dir s3://bucket/raw --cluster tcp://scheduler:8786
    """
    _set_pinning(no_pin_workers)
    _announce()
    portal_list = _load_portals_or_exit(portals)
    from nianbao.harvest.client import ClientSettings
    from nianbao.harvest.crawl import parse_years

    try:
        year_range = parse_years(years) if years else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--years") from None
    if delay < 0:
        raise typer.BadParameter("must not be negative", param_hint="--delay")
    url = _database(db)
    with _errors_as_exit_statuses():

        def run() -> Any:
            from nianbao.flows.harvest import harvest_flow
            from nianbao.schema.db import public_db_url

            return harvest_flow(
                portal_list,
                public_db_url(url),
                years=year_range,
                raw_dir=raw_dir,
                workers=workers,
                client_settings=ClientSettings(min_interval=delay),
                cluster=cluster,
                return_state=True,
            )

        summary = _orchestrated(run, url, raw_dir)
    typer.echo(f"warehouse: {_safe_url(url)}")
    for line in summary.lines():
        typer.echo(line)
    raise typer.Exit(EXIT_FAILED_DOCUMENTS if summary.failure_message() else 0)


@app.command()
def serve(
    portals: PortalsOption,
    cron: Annotated[
        str, typer.Option("--cron", help="when to harvest, a cron expression")
    ] = "0 2 * * *",
    timezone: Annotated[
        str, typer.Option("--timezone", help="time zone of the cron expression")
    ] = "Asia/Shanghai",
    name: Annotated[
        str, typer.Option("--name", help="name of the Prefect deployment")
    ] = "nightly-serve",
    db: DbOption = None,
    workers: WorkersOption = 1,
    raw_dir: RawDirOption = None,
    delay: DelayOption = 1.0,
    cluster: ClusterOption = None,
    no_pin_workers: NoPinOption = False,
) -> None:
    """Harvest on a schedule: register a Prefect deployment and run its runs until stopped.

    Needs a Prefect server (`prefect server start`, then PREFECT_API_URL); portals.toml is
    read again by every run. The deployment is `nianbao-harvest/nightly-serve` (prefect.yaml's
    is `nightly`); its parameters hold the database URL without its password, which runs take
    from this process's environment.

    Example:
        nianbao serve --portals portals.toml --cron "0 2 * * *"
    """
    _load_portals_or_exit(portals)
    _set_pinning(no_pin_workers)
    url = _database(db)
    _quiet_prefect()
    from nianbao.flows.orchestrator import configure_prefect

    configure_prefect()  # before Prefect is first imported: it reads its settings then
    from nianbao.flows.harvest import cron_schedule, serve_harvest
    from nianbao.harvest.client import ClientSettings

    try:
        schedule = cron_schedule(cron, timezone)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--cron/--timezone") from None
    with _errors_as_exit_statuses():
        from nianbao.schema.db import connect_or_explain

        connect_or_explain(url)
        serve_harvest(
            portals,
            schedule,
            name=name,
            db_url=url,
            raw_dir=raw_dir,
            workers=workers,
            client_settings=ClientSettings(min_interval=delay),
            cluster=cluster,
        )


portals_app = typer.Typer(help="Look at the portals of portals.toml.", no_args_is_help=True)
app.add_typer(portals_app, name="portals")


@portals_app.command("check")
def portals_check(
    portals: PortalsOption,
    years: Annotated[
        str | None,
        typer.Option("--years", help="what a harvest of these years would open: 2019-2023"),
    ] = None,
    delay: DelayOption = 1.0,
) -> None:
    """For each portal: the platform recognised, the report entries per year, and what a
    harvest would open. Reads the listings only: no report downloaded, no database.

    Exits 1 when a portal failed or has no report entry.

    Example:
        nianbao portals check --portals portals.toml
        nianbao portals check --portals portals.toml --years 2023
    """
    portal_list = _load_portals_or_exit(portals)
    from nianbao.harvest.client import ClientSettings
    from nianbao.harvest.crawl import parse_years
    from nianbao.harvest.survey import survey_portals

    try:
        year_range = parse_years(years) if years else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--years") from None
    surveys = survey_portals(portal_list, year_range, ClientSettings(min_interval=delay))
    for survey in surveys:
        for line in survey.lines():
            typer.echo(line)
    failed = [s for s in surveys if s.failed]
    typer.echo(f"portals: {len(surveys)}, failed or empty: {len(failed)}")
    raise typer.Exit(1 if failed else 0)


db_app = typer.Typer(help="Create or migrate the warehouse schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(db: DbOption = None) -> None:
    """Create or migrate the warehouse schema to the newest revision.

    Example:
        nianbao db upgrade --db postgresql+psycopg://etl@db/warehouse
    """
    url = _database(db)
    with _errors_as_exit_statuses():
        from nianbao.schema.db import connect_or_explain, current_revision, upgrade

        connect_or_explain(url)
        upgrade(url)
        typer.echo(f"{_safe_url(url)} at revision {current_revision(url)}")


@app.command(name="export")
def export_command(
    out: Annotated[Path, typer.Option("--out", help="folder to write the datasets into")],
    fmt: Annotated[
        str, typer.Option("--format", help="parquet or csv", case_sensitive=False)
    ] = "parquet",
    db: DbOption = None,
) -> None:
    """Write the BI views and the facts to files partitioned by year (OUT/NAME/year=YYYY/).

    DuckDB, pandas, Spark and Trino read each folder as one table without nianbao. Each
    dataset's folder is replaced.

    Example:
        nianbao export --db sqlite:///nianbao.db --format parquet --out export/
    """
    from nianbao.schema.export import FORMATS

    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise typer.BadParameter(
            f"{fmt!r} is not one of {', '.join(FORMATS)}", param_hint="--format"
        )
    url = _database(db)
    with _errors_as_exit_statuses():
        from nianbao.schema.db import connect_or_explain, engine_for, upgrade
        from nianbao.schema.export import export

        connect_or_explain(url)
        upgrade(url)
        started = time.monotonic()
        engine = engine_for(url)
        try:
            written = export(engine, out, fmt)  # type: ignore[arg-type]
        finally:
            engine.dispose()
    for dataset in written:
        typer.echo(
            f"{dataset.name}: {dataset.rows} rows, {dataset.files} files, {dataset.bytes:,} bytes"
        )
    typer.echo(f"exported to {out} in {time.monotonic() - started:.1f} s")


@app.command(name="report")
def report_command(
    out: Annotated[Path, typer.Option("--out", help="the HTML file to write")] = Path(
        "quality.html"
    ),
    db: DbOption = None,
) -> None:
    """Write the data-quality report: one self-contained HTML page with charts (works offline).

    Reports per year and region, R1–R6 failure rates by year and level, outcomes of
    applications, reviews and lawsuits, findings, the worst reports and the largest changes
    from the previous year.

    Example:
        nianbao report --db sqlite:///nianbao.db --out quality.html
    """
    url = _database(db)
    with _errors_as_exit_statuses():
        from nianbao.schema.db import connect_or_explain, engine_for, upgrade
        from nianbao.schema.quality import gather, render_html

        connect_or_explain(url)
        upgrade(url)
        engine = engine_for(url)
        try:
            data = gather(engine)
        finally:
            engine.dispose()
        try:
            out.write_text(render_html(data), encoding="utf-8")
        except OSError as exc:
            raise typer.BadParameter(
                f"cannot write {out}: {exc.strerror}", param_hint="--out"
            ) from None
    typer.echo(f"{out}: {data.totals['current_reports']} current reports")


def main() -> None:
    # A run that seems stuck (a nightly job past its hour) says where each of its threads is,
    # and goes on: `kill -USR1 <pid>` writes their stacks to stderr.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    app()
