"""`nianbao.*` is a folder a static tool can follow: jedi (an editor's engine, run here without
executing anything of nianbao) jumps from an import to the file under the top-level folder."""

from __future__ import annotations

import jedi

from .helpers import ROOT

IMPORTS = {
    # an import a newcomer reads: the file and the definition it must lead to
    "from nianbao.parsers.report import parse_bytes": ("parsers/report.py", "parse_bytes"),
    "from nianbao.parsers.result import ParseResult": ("parsers/result.py", "ParseResult"),
    "from nianbao.schema.load import load_document": ("schema/load.py", "load_document"),
    "from nianbao.flows.ingest import ingest_flow": ("flows/ingest.py", "ingest_flow"),
    "from nianbao.harvest.crawler import crawl": ("harvest/crawler.py", "crawl"),
}


def test_imports_resolve_statically_to_the_files_of_the_top_level_folders():
    source = "\n".join(IMPORTS) + "\n"
    # The project is the repository; jedi reads files, it runs no import hook.
    script = jedi.Script(source, path=ROOT / "tests" / "reader.py", project=jedi.Project(ROOT))
    for line, (statement, (file, name)) in enumerate(IMPORTS.items(), start=1):
        (definition,) = script.goto(line, len(statement) - 1, follow_imports=True)
        assert definition.module_path.resolve() == ROOT / file, statement
        assert (definition.name, definition.type) in ((name, "function"), (name, "class"))
        defined = (ROOT / file).read_text("utf-8").splitlines()[definition.line - 1]
        assert defined.lstrip().startswith((f"def {name}(", f"class {name}"))
