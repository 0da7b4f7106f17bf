"""The `nianbao` command: a thin layer over the library. Prefect is imported only by commands
that orchestrate (ingest, harvest, serve), never by `parse`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

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


@app.command()
def parse(
    paths: Annotated[
        list[Path], typer.Argument(help="report files: PDF, DOCX, DOC/WPS, HTML, text")
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="one JSON object per document (JSON Lines)")
    ] = False,
) -> None:
    """Parse reports and print what was found.

    Example:
        nianbao parse samples/huzhu-employment-2023.pdf
        nianbao parse --json samples/*.docx samples/*.html > facts.jsonl
    """
    from nianbao.parsers.report import parse_file

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


def main() -> None:
    app()
