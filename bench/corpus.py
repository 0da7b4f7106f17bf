"""A benchmark corpus: a few hundred distinct documents made from the samples.

Every copy has bytes of its own (so its sha256 differs and the ingest parses and loads it as a
new document) while it still parses to the same report:

- PDF: a comment line after the final `%%EOF` (readers ignore bytes after it);
- HTML: an HTML comment appended after `</html>`;
- TXT: trailing whitespace (spaces and tabs spelling the copy number), which the parser strips;
- DOCX: a different zip archive comment, written by `zipfile` (Word and python-docx ignore it).

    .venv/bin/python bench/corpus.py 300 /tmp/corpus      # writes the files and prints the mix

The benches import `make_corpus` and write into a temporary folder they delete afterwards.
"""

from __future__ import annotations

import argparse
import io
import zipfile
from collections import Counter
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
FORMATS = ("pdf", "docx", "html", "txt")


def sample_files(root: Path = SAMPLES) -> list[Path]:
    """The sample documents (not the gold files or the seed renderer), in a stable order."""
    return sorted(p for fmt in FORMATS for p in root.glob(f"*.{fmt}"))


def variant(data: bytes, fmt: str, n: int) -> bytes:
    """The bytes of copy `n` of a document: distinct for every `n`, same content."""
    if fmt == "pdf":
        return data.rstrip(b"\r\n") + f"\n% nianbao bench copy {n}\n".encode()
    if fmt == "html":
        return data + f"\n<!-- nianbao bench copy {n} -->\n".encode()
    if fmt == "txt":
        tail = format(n, "b").replace("0", " ").replace("1", "\t")
        return data + b"\n" + tail.encode() + b"\n"
    if fmt == "docx":
        out = io.BytesIO()
        with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
            for info in src.infolist():
                dst.writestr(info, src.read(info.filename))
            dst.comment = f"nianbao bench copy {n}".encode()
        return out.getvalue()
    raise ValueError(f"no variant rule for {fmt}")


def make_corpus(target: Path, count: int = 300, samples: list[Path] | None = None) -> Counter:
    """Write `count` documents into `target`, cycling through the samples; return the mix."""
    samples = samples or sample_files()
    blobs = [(p, p.read_bytes()) for p in samples]
    target.mkdir(parents=True, exist_ok=True)
    mix: Counter = Counter()
    for i in range(count):
        path, data = blobs[i % len(blobs)]
        fmt = path.suffix[1:]
        copy = i // len(blobs)
        (target / f"{copy:04d}-{path.name}").write_bytes(variant(data, fmt, copy))
        mix[fmt] += 1
    return mix


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", type=int, nargs="?", default=300)
    parser.add_argument("target", type=Path)
    args = parser.parse_args()
    mix = make_corpus(args.target, args.count)
    print(
        f"{sum(mix.values())} documents in {args.target}: "
        + ", ".join(f"{n} {f}" for f, n in sorted(mix.items()))
    )


if __name__ == "__main__":
    main()
