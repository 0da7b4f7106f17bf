"""Raw bytes kept content-addressed on disk: `ROOT/ab/abcdef….ext`, never overwritten.

The file name comes from the sha256 and a sanitised extension only, never from a document or a
URL, so nothing outside ROOT can be written.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

DEFAULT_RAW_DIR = "raw"


class StorageError(RuntimeError):
    """The raw store cannot be written: the disk is full, or the folder is not writable."""


_SAFE_SUFFIX = re.compile(r"^\.[a-z0-9]{1,8}$")


def _suffix(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return suffix if _SAFE_SUFFIX.match(suffix) else ""


class RawStore:
    def __init__(self, root: str | Path = DEFAULT_RAW_DIR) -> None:
        self.root = Path(root).resolve()

    def path_for(self, sha256: str, name: str = "") -> Path:
        if not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise ValueError(f"not a sha256: {sha256!r}")
        return self.root / sha256[:2] / f"{sha256}{_suffix(name)}"

    def put(self, data: bytes, name: str = "") -> tuple[str, Path]:
        """Store `data` (if new) and return its sha256 and path."""
        sha256 = hashlib.sha256(data).hexdigest()
        target = self.path_for(sha256, name)
        if target.exists():
            return sha256, target
        temporary = None
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            # Write then rename: a crash never leaves a half-written file under the final name.
            handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".part-")
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.replace(temporary, target)
        except OSError as exc:
            if temporary is not None:
                Path(temporary).unlink(missing_ok=True)
            raise StorageError(
                f"cannot keep raw bytes in {self.root}: {exc.strerror or exc}"
            ) from exc
        return sha256, target

    def check_writable(self) -> None:
        """StorageError now, rather than after the first parse, when ROOT cannot be written."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.root, prefix=".part-"):
                pass
        except OSError as exc:
            raise StorageError(
                f"cannot keep raw bytes in {self.root}: {exc.strerror or exc}"
            ) from exc

    def put_file(self, path: Path) -> tuple[str, Path]:
        return self.put(path.read_bytes(), path.name)
