"""The fixture portal (tests/fixtures/portal/) served over real HTTP on 127.0.0.1.

Behaves like a government CMS: HTML with an ETag, attachments with Last-Modified only, both
answered 304 to a matching conditional request; a 302 to another path, a path that fails with
500 a set number of times, a slow path, and 404 for anything else. Every request is recorded.
"""

from __future__ import annotations

import hashlib
import sys
import threading
import time
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self

SITE = Path(__file__).resolve().parent / "fixtures" / "portal"
LISTING = "/zwgk/nb/"
# As a government CMS would: the page with no <meta> charset gets one in its header.
HEADER_CHARSETS = {"/zwgk/nb/index_1.html": "GBK"}
REDIRECTS = {"/zwgk/nb/old/2022.html": "/zwgk/nb/202301/t20230120_88.html"}
_TYPES = {
    ".html": "text/html",
    ".txt": "text/plain; charset=utf-8",
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}
_PUBLISHED = formatdate(time.mktime((2024, 1, 15, 8, 0, 0, 0, 0, 0)), usegmt=True)


@dataclass(frozen=True, slots=True)
class Request:
    path: str
    headers: dict[str, str]
    at: float  # time.monotonic() when it arrived


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        # A client that gave up waiting (a timed-out slow page, a killed harvest) closed its
        # socket before the answer went out: expected, not a traceback in the test output.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class LoopbackServer:
    """An HTTP server of the tests on 127.0.0.1, in a thread, for the length of a `with`."""

    def serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = _QuietServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def url(self, path: str) -> str:
        return self.origin + path

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class PortalSite(LoopbackServer):
    def __init__(self, root: Path = SITE) -> None:
        self.root = root
        self.requests: list[Request] = []
        self.redirects = dict(REDIRECTS)
        self.failures: dict[str, int] = {}  # path → how many more requests get a 500
        self.slow: dict[str, float] = {}  # path → seconds before answering
        self._changed: dict[str, tuple[bytes, str]] = {}  # path → (bytes, Last-Modified)
        self._lock = threading.Lock()
        self.serve(_handler(self))

    def fail(self, path: str, times: int = 1) -> None:
        self.failures[path] = times

    def change(self, path: str, data: bytes) -> None:
        """Publish new bytes at `path` (a corrected report): a new ETag and Last-Modified."""
        self._changed[path] = (data, formatdate(usegmt=True))

    def content(self, path: str) -> bytes | None:
        if path in self._changed:
            return self._changed[path][0]
        file = (self.root / path.lstrip("/")).resolve()
        if path.endswith("/"):
            file = file / "index.html"
        if not file.is_relative_to(self.root) or not file.is_file():
            return None
        return file.read_bytes()

    def paths(self, since: int = 0) -> list[str]:
        """Paths requested, in order, from request number `since` on."""
        with self._lock:
            return [r.path for r in self.requests[since:]]

    def record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def last_modified(self, path: str) -> str:
        return self._changed[path][1] if path in self._changed else _PUBLISHED


def _handler(site: PortalSite) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            pass

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            site.record(Request(path, dict(self.headers), time.monotonic()))
            if path in site.slow:
                time.sleep(site.slow[path])
            if site.failures.get(path, 0) > 0:
                site.failures[path] -= 1
                return self._send(500, b"busy", {"Content-Type": "text/plain"})
            if path in site.redirects:
                return self._send(302, b"", {"Location": site.redirects[path]})
            data = site.content(path)
            if data is None:
                return self._send(404, b"not found", {"Content-Type": "text/plain"})
            suffix = Path(path).suffix or ".html"
            headers = {"Content-Type": _TYPES.get(suffix, "application/octet-stream")}
            if path in HEADER_CHARSETS:
                headers["Content-Type"] += f"; charset={HEADER_CHARSETS[path]}"
            if suffix in (".html", ".txt"):
                headers["ETag"] = f'"{hashlib.sha256(data).hexdigest()[:16]}"'
                fresh = self.headers.get("If-None-Match") == headers["ETag"]
            else:
                headers["Last-Modified"] = site.last_modified(path)
                since = self.headers.get("If-Modified-Since")
                fresh = since is not None and parsedate_to_datetime(since) >= parsedate_to_datetime(
                    headers["Last-Modified"]
                )
            if fresh:
                return self._send(
                    304, b"", {k: v for k, v in headers.items() if k != "Content-Type"}
                )
            self._send(200, data, headers)

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler
