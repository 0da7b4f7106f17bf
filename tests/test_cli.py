"""`nianbao parse` as a user runs it."""

import json
import subprocess
import sys
from pathlib import Path

from .helpers import ROOT, SAMPLES

NIANBAO = str(Path(sys.executable).with_name("nianbao"))
CONTRACT_KEYS = {
    "source",
    "sha256",
    "format",
    "agency",
    "year",
    "template",
    "sections",
    "facts",
    "checks",
    "problems",
}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([NIANBAO, *args], capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_parse_json_prints_one_object_per_document():
    result = run(
        "parse",
        "--json",
        "samples/huzhu-employment-2023.txt",
        "samples/04_shanghai_szfbgt_2019.html",
    )
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.returncode == 0
    assert [d["format"] for d in lines] == ["txt", "html"]
    assert all(set(d) >= CONTRACT_KEYS for d in lines)
    fact = next(
        f
        for f in lines[0]["facts"]
        if (f["table"], f["row"], f["col"]) == ("applications", "new_received", "natural_person")
    )
    assert fact == {
        "table": "applications",
        "row": "new_received",
        "col": "natural_person",
        "value": 0,
        "raw": "0",
        "label": "本年新收政府信息公开申请数量",
        "unit": None,
    }


def test_parse_summary_shows_tables_and_failed_rules():
    result = run("parse", "samples/04_shanghai_szfbgt_2019.html")
    assert result.returncode == 0
    assert "上海市人民政府办公厅" in result.stdout and "template: 2019" in result.stdout
    assert "R3 granted: applicant columns 272 ≠ total 0" in result.stdout


def test_a_failed_document_still_yields_its_object_and_a_nonzero_exit(tmp_path):
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    result = run("parse", "--json", str(empty))
    [document] = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.returncode == 1
    assert document["problems"][0]["code"] == "empty_file" and document["facts"] == []


def test_parse_does_not_import_prefect_or_the_database_layer():
    code = (
        "import sys; sys.argv = ['nianbao', 'parse', '--json', 'samples/huzhu-employment-2023.txt']\n"
        "from nianbao.flows.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('prefect', 'sqlalchemy', 'pdfplumber') if m in sys.modules), file=sys.stderr)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert result.stderr.strip().splitlines()[-1] == "[]"


def test_every_command_has_an_example_in_its_help():
    for command in (["parse"], ["ingest"], ["eval"], ["db", "upgrade"]):
        assert "Example:" in run(*command, "--help").stdout, command


def test_eval_prints_full_cell_accuracy_on_the_samples():
    result = run("eval", str(SAMPLES))
    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines()[-1].startswith(" 100.00%")


def test_eval_prints_who_published_each_report():
    result = run("eval", str(SAMPLES))
    assert result.returncode == 0, result.stdout
    assert (
        "who published it over 6 documents: agency 6/6, year 6/6, level 6/6, region_code 6/6"
        in result.stdout
    )


def test_ingest_progress_off_a_terminal_passes_every_multiple_of_fifty_once(capsys):
    # Regression: a line was printed only when the count was a multiple of 50 exactly, which
    # batches of 56 documents seldom hit: a 1,200-document run printed 4 lines, some twice.
    from nianbao.flows.cli import _run_with_progress

    def run(progress):
        # What a run of 300 documents reports: its start, batches (one of 34 passing no
        # multiple of 50), a slice's plan adding no unchanged documents, the last batches.
        for done in (0, 56, 90, 112, 112, 168, 224, 250, 250, 300):
            progress(done, 300)
        return "summary"

    assert _run_with_progress(run) == "summary"
    printed = capsys.readouterr().err.splitlines()
    counts = [int(line.split()[1].split("/")[0]) for line in printed]
    assert counts == [0, 56, 112, 168, 224, 250, 300]
    assert all(line.endswith("/300 documents") for line in printed)
