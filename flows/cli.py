"""The `nianbao` command: a thin layer over the library. Prefect is imported only by commands
that orchestrate (ingest, harvest, serve), never by `parse`."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from nianbao.flows.portals import Portal

app = typer.Typer(
    help="nianbao: parse China's government information-disclosure annual reports into a warehouse.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


def _print_summary(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(
        f"[bold]{result['source']}[/bold]  ({result['format']}, {result['bytes']} bytes, status {result['status']})"
    )
    console.print(
        f"agency: {result['agency']}   year: {result['year']}   template: {result['template']}"
    )
    console.print(
        "sections: " + ", ".join(f"{s['code']} ({s['heading'] or '—'})" for s in result["sections"])
    )
    for table_code in ("active_disclosure", "applications", "review_litigation"):
        facts = [f for f in result["facts"] if f["table"] == table_code]
        if not facts:
            continue
        columns = list(dict.fromkeys(f["col"] for f in facts))
        grid = Table(title=table_code, show_lines=False)
        grid.add_column("row")
        for column in columns:
            grid.add_column(column, justify="right")
        for row in dict.fromkeys(f["row"] for f in facts):
            cells = {f["col"]: f for f in facts if f["row"] == row}
            grid.add_row(
                row,
                *[
                    ("·" if cells[c]["value"] is None else str(cells[c]["value"]))
                    if c in cells
                    else ""
                    for c in columns
                ],
            )
        console.print(grid)
    failed = [c for c in result["checks"] if not c["ok"]]
    console.print(f"checks: {len(result['checks'])} evaluated, {len(failed)} failed")
    for check in failed:
        console.print(f"  [red]{check['rule']}[/red] {check['scope']}: {check['detail']}")
    for problem in result["problems"]:
        console.print(f"  [yellow]{problem['code']}[/yellow]: {problem['message']}")


NoOcrOption = Annotated[
    bool,
    typer.Option("--no-ocr", help="do not OCR image-only PDF pages (they stay no_text_layer)"),
]


def _set_ocr(no_ocr: bool) -> None:
    # Through the environment, so the parser processes an ingest starts inherit it.
    if no_ocr:
        os.environ["NIANBAO_OCR"] = "off"


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
        failed |= result["status"] == "failed"
        if as_json:
            sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
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
    from nianbao.flows.evaluate import evaluate

    scores = evaluate(roots or [Path("samples")])
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
    typer.echo(
        f"{right / total:8.2%}  {right:4d}/{total:<4d} overall cell accuracy over {len(scores)} documents"
    )
    perfect = right == total and not any(s.metadata_errors or s.missing_sections for s in scores)
    raise typer.Exit(0 if perfect else 1)


DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="SQLAlchemy URL of the warehouse (default: $NIANBAO_DB or sqlite:///nianbao.db)",
    ),
]


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="files or folders (searched recursively)")],
    db: DbOption = None,
    workers: Annotated[int, typer.Option("--workers", "-w", help="parser processes")] = 1,
    raw_dir: Annotated[
        Path, typer.Option("--raw-dir", help="where raw bytes are kept, content-addressed")
    ] = Path("raw"),
    timeout: Annotated[
        float, typer.Option("--timeout", help="seconds one document may take")
    ] = 120.0,
    no_ocr: NoOcrOption = False,
) -> None:
    """Parse reports and load them into the warehouse, then print a summary.

    Example:
        nianbao ingest samples/
        nianbao ingest /data/reports --db postgresql+psycopg://etl@db/warehouse --workers 4
    """
    from nianbao.schema.db import resolve_db_url

    url = resolve_db_url(db)
    for path in paths:
        if not path.exists():
            raise typer.BadParameter(f"{path} does not exist", param_hint="PATHS")
    _set_ocr(no_ocr)
    from nianbao.flows.ingest import DocumentLimits, ingest_flow

    summary = _run_with_progress(
        lambda progress: ingest_flow(
            [str(p) for p in paths],
            url,
            workers,
            raw_dir=str(raw_dir),
            limits=DocumentLimits(seconds=timeout),
            on_progress=progress,
        )
    )
    typer.echo(f"warehouse: {_safe_url(url)}")
    for line in summary.lines():
        typer.echo(line)
    raise typer.Exit(1 if summary.failed else 0)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _run_with_progress(run):
    """A rich progress bar on a terminal; plain log lines otherwise."""
    if not sys.stderr.isatty():

        def log(done: int, total: int) -> None:
            if total and (done == total or done % 50 == 0):
                typer.echo(f"progress: {done}/{total} documents", err=True)

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
RawDirOption = Annotated[
    Path, typer.Option("--raw-dir", help="where raw bytes are kept, content-addressed")
]
DelayOption = Annotated[
    float, typer.Option("--delay", help="seconds between two requests to one host")
]


def _load_portals_or_exit(path: Path) -> list[Portal]:
    from nianbao.flows.portals import PortalsError, load_portals

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
    workers: Annotated[int, typer.Option("--workers", "-w", help="parser processes")] = 1,
    raw_dir: RawDirOption = Path("raw"),
    delay: DelayOption = 1.0,
) -> None:
    """Crawl the portals' annual-report columns, download what is new and ingest it.

    A run stopped half way continues where it stopped when started again.

    Example:
        nianbao harvest --portals portals.toml
        nianbao harvest --portals portals.toml --years 2019-2023
    """
    from nianbao.schema.db import resolve_db_url

    portal_list = _load_portals_or_exit(portals)
    from nianbao.flows.client import ClientSettings
    from nianbao.flows.harvest import harvest_flow, parse_years

    try:
        year_range = parse_years(years) if years else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--years") from None
    url = resolve_db_url(db)
    summary = harvest_flow(
        portal_list,
        url,
        years=year_range,
        raw_dir=str(raw_dir),
        workers=workers,
        client_settings=ClientSettings(min_interval=delay),
    )
    typer.echo(f"warehouse: {_safe_url(url)}")
    for line in summary.lines():
        typer.echo(line)
    raise typer.Exit(1 if summary.failed else 0)


@app.command()
def serve(
    portals: PortalsOption,
    cron: Annotated[
        str, typer.Option("--cron", help="when to harvest, a cron expression")
    ] = "0 2 * * *",
    timezone: Annotated[
        str, typer.Option("--timezone", help="time zone of the cron expression")
    ] = "Asia/Shanghai",
    name: Annotated[str, typer.Option("--name", help="name of the Prefect deployment")] = "nightly",
    db: DbOption = None,
    workers: Annotated[int, typer.Option("--workers", "-w", help="parser processes")] = 1,
    raw_dir: RawDirOption = Path("raw"),
    delay: DelayOption = 1.0,
) -> None:
    """Harvest on a schedule: register a Prefect deployment and run its runs until stopped.

    Needs a Prefect server (`prefect server start`, then PREFECT_API_URL); portals.toml is
    read again by every run.

    Example:
        nianbao serve --portals portals.toml --cron "0 2 * * *"
    """
    _load_portals_or_exit(portals)
    from nianbao.flows.client import ClientSettings
    from nianbao.flows.harvest import NoPrefectServer, cron_schedule, serve_harvest

    try:
        schedule = cron_schedule(cron, timezone)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--cron/--timezone") from None
    try:
        serve_harvest(
            portals,
            schedule,
            name=name,
            db_url=db,
            raw_dir=str(raw_dir),
            workers=workers,
            client_settings=ClientSettings(min_interval=delay),
        )
    except NoPrefectServer as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


db_app = typer.Typer(help="Create or migrate the warehouse schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(db: DbOption = None) -> None:
    """Create or migrate the warehouse schema to the newest revision.

    Example:
        nianbao db upgrade --db postgresql+psycopg://etl@db/warehouse
    """
    from nianbao.schema.db import current_revision, resolve_db_url, upgrade

    url = resolve_db_url(db)
    upgrade(url)
    typer.echo(f"{_safe_url(url)} at revision {current_revision(url)}")


def main() -> None:
    app()
