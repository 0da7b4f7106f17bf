"""Raw bytes kept content-addressed under a root: the key `ab/abcdef….ext`, never overwritten.

The root is a local folder or any fsspec URL (`s3://bucket/raw`, `memory://raw`, …): $NIANBAO_RAW,
or the `--raw-dir` option, else `./raw`. The warehouse stores the key only, never where the root
is, so a team's machines can reach one store by different paths or URLs, and the store can move.

The key comes from the sha256 and a sanitised extension only, never from a document or a URL, so
nothing outside the root can be written.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import fsspec
from fsspec.implementations.local import LocalFileSystem

from nianbao.parsers.metadata import SourceHints

DEFAULT_RAW_DIR = "raw"
RAW_ROOT_ENV = "NIANBAO_RAW"
# Existence checks in flight at once (`RawStore.held`): enough to hide a remote store's latency.
CHECKS_IN_FLIGHT = 16


class StorageError(RuntimeError):
    """The raw store cannot be written: the disk is full, or the folder is not writable."""


_SAFE_SUFFIX = re.compile(r"^\.[a-z0-9]{1,8}$")
_KEY = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{64}(\.[a-z0-9]{1,8})?$")


def _suffix(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return suffix if _SAFE_SUFFIX.match(suffix) else ""


def resolve_raw_root(option: str | Path | None) -> str:
    """The raw store's root: the option, else $NIANBAO_RAW, else `raw` (a local folder)."""
    return str(option or os.environ.get(RAW_ROOT_ENV) or DEFAULT_RAW_DIR)


def key_for(sha256: str, name: str = "") -> str:
    """The key of bytes with this sha256, named `name` where they came from."""
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ValueError(f"not a sha256: {sha256!r}")
    return f"{sha256[:2]}/{sha256}{_suffix(name)}"


def key_of(stored: str) -> str | None:
    """The key in what an older warehouse stored (an absolute path into the store), or None."""
    parts = PurePosixPath(stored.replace("\\", "/")).parts
    key = "/".join(parts[-2:])
    return key if _KEY.match(key) else None


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """A document whose bytes are in the raw store, handed to ingest by key (a harvest's), so
    that a worker on any machine reads them from the shared store: no local path travels."""

    key: str
    source: str  # where it came from: its URL, or the file it was read from
    hints: SourceHints | None = None  # what its listing and portal said of it

    @property
    def sha256(self) -> str:
        return PurePosixPath(self.key).name[:64]


class RawStore:
    def __init__(self, root: str | Path = DEFAULT_RAW_DIR) -> None:
        self.fs, path = fsspec.core.url_to_fs(str(root))
        self.local = isinstance(self.fs, LocalFileSystem)
        # A local root is made absolute once, so a worker started elsewhere reads the same files.
        self.root = str(Path(path).resolve()) if self.local else str(root)
        self._base = str(Path(path).resolve()) if self.local else path.rstrip("/")

    def _where(self, key: str) -> str:
        if not _KEY.match(key):
            raise ValueError(f"not a raw store key: {key!r}")
        return f"{self._base}/{key}"

    def find(self, sha256: str) -> str | None:
        """The key of the bytes with this sha256, whatever their extension; None when the
        store does not hold them."""
        # Listed, not globbed: a root whose path holds [, * or ? would read as a pattern.
        folder, stem = self._where(key_for(sha256)).rsplit("/", 1)
        try:
            held = self.fs.ls(folder, detail=False)
        except FileNotFoundError:
            return None
        return next(
            (key for key in map(key_of, held) if key and key.split("/")[1].startswith(stem)), None
        )

    def put(self, data: bytes, name: str = "") -> tuple[str, str]:
        """Store `data` (if new) and return its sha256 and key."""
        sha256 = hashlib.sha256(data).hexdigest()
        key = key_for(sha256, name)
        try:
            if self.local:
                self._put_local(Path(self._where(key)), data)
            elif not self.fs.exists(self._where(key)):
                # Object stores make a put visible whole or not at all.
                self.fs.pipe_file(self._where(key), data)
        except OSError as exc:
            raise StorageError(
                f"cannot keep raw bytes in {self.root}: {exc.strerror or exc}"
            ) from exc
        return sha256, key

    @staticmethod
    def _put_local(target: Path, data: bytes) -> None:
        if target.exists():
            return
        temporary = None
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            # Write then rename: a crash never leaves a half-written file under the final name.
            handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".part-")
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.replace(temporary, target)
        except OSError:
            if temporary is not None:
                Path(temporary).unlink(missing_ok=True)
            raise

    def held(self, keys: Iterable[str]) -> set[str]:
        """Those of `keys` the store has bytes under. Checked side by side: on a remote store
        each check is a round trip, and a run after a parser version bump checks every key."""
        wanted = list(dict.fromkeys(keys))
        with ThreadPoolExecutor(max_workers=CHECKS_IN_FLIGHT) as pool:
            found = pool.map(lambda key: self.fs.exists(self._where(key)), wanted)
            return {key for key, exists in zip(wanted, found, strict=True) if exists}

    def read(self, key: str) -> bytes:
        """The bytes kept under `key`."""
        return self.fs.cat_file(self._where(key))

    def check_writable(self) -> None:
        """StorageError now, rather than after the first parse, when the root cannot be written."""
        try:
            if self.local:
                Path(self.root).mkdir(parents=True, exist_ok=True)
                with tempfile.TemporaryFile(dir=self.root, prefix=".part-"):
                    pass
            else:
                probe = f"{self._base}/.part-probe"
                self.fs.pipe_file(probe, b"")
                self.fs.rm_file(probe)
        except OSError as exc:
            raise StorageError(
                f"cannot keep raw bytes in {self.root}: {exc.strerror or exc}"
            ) from exc

    def put_file(self, path: Path) -> tuple[str, str]:
        return self.put(path.read_bytes(), path.name)
