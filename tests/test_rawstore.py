"""The raw store: bytes by key under a root that is a local folder or an fsspec URL."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from nianbao.harvest.rawstore import RAW_ROOT_ENV, RawStore, StorageError, resolve_raw_root

from .helpers import SAMPLES

REPORT = SAMPLES / "01_huaian_shizhengfu_2024.pdf"


@pytest.mark.parametrize("root", ["folder", "file-url", "memory"])
def test_bytes_are_kept_and_read_back_by_key(root: str, tmp_path: Path) -> None:
    where = {
        "folder": str(tmp_path / "raw"),
        "file-url": f"file://{tmp_path / 'raw'}",
        "memory": f"memory://nianbao-test-{tmp_path.name}",
    }[root]
    store = RawStore(where)
    store.check_writable()
    data = REPORT.read_bytes()
    sha256, key = store.put(data, "Report 2024.PDF")
    assert sha256 == hashlib.sha256(data).hexdigest()
    # The key is made of the sha256 and a clean extension: it says nothing of the root.
    assert key == f"{sha256[:2]}/{sha256}.pdf"
    assert store.read(key) == data
    assert store.put(data, "copy.pdf") == (sha256, key)  # kept once
    # A crawl that holds only a sha256 (harvest_log's) finds its key again.
    assert store.find(sha256) == key
    assert store.find("0" * 64) is None
    if root != "memory":
        assert (tmp_path / "raw" / key).read_bytes() == data
        assert not list((tmp_path / "raw").rglob(".part-*"))


def test_a_key_cannot_leave_the_root(tmp_path: Path) -> None:
    store = RawStore(tmp_path)
    for key in ("../etc/passwd", "ab/../../x", "/etc/passwd", "ab/cd.pdf"):
        with pytest.raises(ValueError):
            store.read(key)


def test_the_root_comes_from_the_option_then_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(RAW_ROOT_ENV, raising=False)
    assert resolve_raw_root(None) == "raw"
    monkeypatch.setenv(RAW_ROOT_ENV, "s3://bucket/raw")
    assert resolve_raw_root(None) == "s3://bucket/raw"
    assert resolve_raw_root("/data/raw") == "/data/raw"


def test_an_unwritable_root_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StorageError, match="cannot keep raw bytes"):
        RawStore(blocker / "raw").check_writable()


def test_a_root_whose_path_reads_as_a_pattern_still_finds_its_keys(tmp_path: Path) -> None:
    # Regression: find() globbed the whole path, so a root under "raw[1]" found nothing and the
    # crawl lost its validators (no 304s, everything downloaded again).
    store = RawStore(str(tmp_path / "raw[1]*?"))
    sha256, key = store.put(REPORT.read_bytes(), "report.pdf")
    assert store.find(sha256) == key
    assert store.find("0" * 64) is None
