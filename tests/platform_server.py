"""A fixture portal server for the listing platforms: real HTTP on 127.0.0.1.

Serves files (HTML and JSON with an ETag, documents with a Last-Modified, both answered 304 to a
matching conditional request), API handlers that read the query string and a POSTed form (the
gkmlpt list API, the jpage data proxy), redirects, and 429 answers with a Retry-After. A file may
be keyed by its path with its query (downfile.jsp?filename=…), or by its path alone. Every request
is recorded with its method, path, query and form.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from .portal_server import LoopbackServer

_PUBLISHED = formatdate(time.mktime((2024, 1, 15, 8, 0, 0, 0, 0, 0)), usegmt=True)
_VALIDATED_BY_ETAG = ("text/html", "application/json", "text/plain", "text/xml")


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: str
    form: dict[str, str]
    headers: dict[str, str]
    at: float  # time.monotonic() when it arrived

    @property
    def target(self) -> str:
        return f"{self.path}?{self.query}" if self.query else self.path


@dataclass(slots=True)
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Reply]


class FixtureSite(LoopbackServer):
    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str]] = {}  # path[?query] → (bytes, Content-Type)
        self.apis: dict[str, Handler] = {}  # path → handler
        self.redirects: dict[str, str] = {}  # path[?query] → Location
        self.throttled: dict[str, list[int]] = {}  # path → Retry-After of the next 429s
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self.serve(_handler(self))

    def add(self, path: str, body: bytes | str, content_type: str = "text/html") -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.files[path] = (data, content_type)

    def sent(self, since: int = 0) -> list[Request]:
        with self._lock:
            return list(self.requests[since:])

    def targets(self, since: int = 0) -> list[str]:
        return [r.target for r in self.sent(since)]

    def record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)


def _handler(site: FixtureSite) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            pass

        def do_GET(self) -> None:
            self._answer("GET", {})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8")
            form = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
            self._answer("POST", form)

        def _answer(self, method: str, form: dict[str, str]) -> None:
            parts = urlsplit(self.path)
            request = Request(
                method, parts.path, parts.query, form, dict(self.headers), time.monotonic()
            )
            site.record(request)
            waits = site.throttled.get(parts.path)
            if waits:
                retry_after = waits.pop(0)
                return self._send(Reply(429, b"slow down", {"Retry-After": str(retry_after)}))
            for key in (request.target, parts.path):
                if key in site.redirects:
                    return self._send(Reply(302, headers={"Location": site.redirects[key]}))
            if parts.path in site.apis:
                return self._send(site.apis[parts.path](request))
            index = parts.path + "index.html" if parts.path.endswith("/") else None
            file = (
                site.files.get(request.target)
                or site.files.get(parts.path)
                or site.files.get(index or "")
            )
            if file is None or method != "GET":
                return self._send(Reply(404 if file is None else 405, b"no"))
            self._send_file(*file)

        def _send_file(self, data: bytes, content_type: str) -> None:
            headers = {"Content-Type": content_type}
            if content_type.startswith(_VALIDATED_BY_ETAG):
                headers["ETag"] = f'"{hashlib.sha256(data).hexdigest()[:16]}"'
                fresh = self.headers.get("If-None-Match") == headers["ETag"]
            else:
                headers["Last-Modified"] = _PUBLISHED
                since = self.headers.get("If-Modified-Since")
                fresh = since is not None and parsedate_to_datetime(since) >= parsedate_to_datetime(
                    _PUBLISHED
                )
            if fresh:
                del headers["Content-Type"]
                return self._send(Reply(304, headers=headers))
            self._send(Reply(200, data, headers))

        def _send(self, reply: Reply) -> None:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

    return Handler
