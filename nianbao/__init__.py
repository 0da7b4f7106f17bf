"""nianbao: an ETL pipeline for China's government information-disclosure annual reports.

The stages live in the repository's top-level folders (flows/, harvest/, parsers/, schema/); the
sub-packages here are relative links to them, so `nianbao.parsers.report` is the file
parsers/report.py for the interpreter, an editor and any static tool alike. A wheel holds real
copies of the files (docs/architecture.md).
"""
