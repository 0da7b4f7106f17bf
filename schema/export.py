"""The warehouse's views and facts to Parquet or CSV files, partitioned by year.

The layout is Hive's (`OUT/v_reports/year=2024/part-0.parquet`), which DuckDB, pandas (via
pyarrow), Spark and Trino read as one table with a `year` column, without nianbao. A row whose
year is unknown goes to `year=__HIVE_DEFAULT_PARTITION__`, the name those readers give NULL.

Column types come from the values, not the backend (SQLite keeps none in its views): whole
numbers are int64, numbers with a fraction and NUMERIC figures float64 (report figures have far
fewer than 15 significant digits), booleans bool, dates date32, times timestamps, the rest
strings; a column with no value at all is a string column, so every file of a dataset has the
same schema whatever its rows hold.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.dataset as ds
from sqlalchemy import Engine, text

# Dataset name -> the view it is read from. `facts` holds every report's cells, superseded
# reports' included (is_current says which); the views hold the current reports.
DATASETS = {
    "reports": "v_reports",
    "applications": "v_applications",
    "active_disclosure": "v_active_disclosure",
    "review_litigation": "v_review_litigation",
    "key_series": "v_key_series",
    "year_over_year": "v_year_over_year",
    "check_failures": "v_check_failures",
    "facts": "v_facts",
}
ExportFormat = Literal["parquet", "csv"]
FORMATS: tuple[ExportFormat, ...] = ("parquet", "csv")
_CHUNK = 50_000


@dataclass(frozen=True, slots=True)
class ExportedDataset:
    name: str
    rows: int
    files: int
    bytes: int


def export(engine: Engine, out: Path, fmt: ExportFormat = "parquet") -> list[ExportedDataset]:
    """Write every dataset of DATASETS under `out` (each dataset's folder replaced)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}: parquet or csv")
    out.mkdir(parents=True, exist_ok=True)
    return [_export_one(engine, name, view, out / name, fmt) for name, view in DATASETS.items()]


def _export_one(
    engine: Engine, name: str, view: str, folder: Path, fmt: ExportFormat
) -> ExportedDataset:
    # Ordered so that a dataset's files are the same from one export to the next.
    query = text(f"SELECT * FROM {view} ORDER BY 1")
    with engine.connect() as connection:
        result = connection.execution_options(yield_per=_CHUNK).execute(query)
        columns = list(result.keys())
        kinds: list[set[type]] = [set() for _ in columns]
        rows = 0
        for row in result:
            rows += 1
            for kind, value in zip(kinds, row, strict=True):
                if value is not None:
                    kind.add(type(value))
    schema = pa.schema([pa.field(c, _arrow_type(k)) for c, k in zip(columns, kinds, strict=True)])
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    with engine.connect() as connection:
        result = connection.execution_options(yield_per=_CHUNK).execute(query)
        ds.write_dataset(
            _batches(result, schema),
            folder,
            schema=schema,
            format=fmt,
            partitioning=ds.partitioning(pa.schema([schema.field("year")]), flavor="hive"),
            basename_template="part-{i}." + fmt,
            existing_data_behavior="overwrite_or_ignore",
            # pyarrow's default stops at 1024 partitions; years are far fewer, but a warehouse
            # of misread years must still export.
            max_partitions=1_000_000,
        )
    files = [p for p in folder.rglob(f"*.{fmt}")]
    return ExportedDataset(name, rows, len(files), sum(p.stat().st_size for p in files))


def _arrow_type(kinds: set[type]) -> pa.DataType:
    if not kinds or str in kinds:
        return pa.string()
    if kinds <= {bool}:
        return pa.bool_()
    if kinds <= {int}:
        return pa.int64()
    if kinds <= {int, float, Decimal}:
        return pa.float64()
    if kinds <= {datetime}:
        return pa.timestamp("us", tz="UTC")
    if kinds <= {date}:
        return pa.date32()
    return pa.string()


def _convert(value: Any, kind: pa.DataType) -> Any:
    if value is None:
        return None
    if pa.types.is_string(kind):
        return value if isinstance(value, str) else str(value)
    if pa.types.is_floating(kind):
        return float(value)
    return value


def _batches(result: Any, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    types = [field.type for field in schema]
    for chunk in result.partitions(_CHUNK):
        columns = list(zip(*chunk, strict=True))
        yield pa.RecordBatch.from_arrays(
            [
                pa.array([_convert(v, kind) for v in column], type=kind)
                for column, kind in zip(columns, types, strict=True)
            ],
            schema=schema,
        )
