"""A polite, robust HTTP client for government portals (httpx).

- robots.txt obeyed (urllib.robotparser), its Crawl-delay too;
- at most one request per `min_interval` seconds to one host;
- timeouts; retries with exponential backoff on timeouts, connection errors and 5xx, never on 4xx
  but 429; a Retry-After (on 429 and 503) is waited out, and the whole host waits with it;
- conditional requests (If-None-Match / If-Modified-Since) from validators the caller keeps, so
  an unchanged file is answered with 304 and not downloaded again;
- bodies streamed and cut at a size cap;
- redirects followed one hop at a time, only within the hosts allowed for the call;
- text decoded by the charset of the header, of a <meta> tag, or of the bytes (GBK, GB18030);
- a User-Agent that names the project;
- GET, and POST of a form for the listing APIs that want it (大汉 jpage).

Every request the client sends is returned as an `Exchange`, so the caller can log all of them.
One client may serve several threads (one portal each): the per-host clock and the robots.txt
cache are guarded by locks, so two threads never hit one host closer than the interval.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from email.message import Message
from email.utils import parsedate_to_datetime
from importlib.metadata import version
from urllib.parse import urljoin, urlsplit
from urllib.robotparser import RobotFileParser

import httpx

from nianbao.parsers.encoding import declared_charset, decode_text

USER_AGENT = (
    f"nianbao/{version('nianbao')} (harvester of government information-disclosure annual "
    "reports; python-httpx)"
)
REDIRECTS = (301, 302, 303, 307, 308)
# Redirects after which a POST is re-sent as a GET (what browsers do); 307 and 308 keep the POST.
_REDIRECTS_TO_GET = (301, 302, 303)
# Servers that never set a charset say ISO-8859-1 by default (Tomcat); on a Chinese page that
# is never true, so such a header must not outrank the page's own <meta> or its bytes.
_DEFAULT_CHARSETS = {"iso-8859-1", "latin-1", "latin1", "us-ascii", "ascii", "windows-1252"}

Validators = tuple[str | None, str | None]  # (ETag, Last-Modified) of the copy the caller has


@dataclass(frozen=True, slots=True)
class ClientSettings:
    user_agent: str = USER_AGENT
    min_interval: float = 1.0  # seconds between two requests to one host
    timeout: float = 30.0  # seconds to connect, and between two reads of a body
    retries: int = 3  # attempts after the first, on timeouts, connection errors and 5xx
    backoff: float = 2.0  # seconds before the first retry; doubles each time
    max_bytes: int = 100 * 1024 * 1024
    max_redirects: int = 5
    # The longest Retry-After waited out; a server asking for more is given up on for this run.
    max_retry_after: float = 300.0


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request sent and how it ended: a row of harvest_log."""

    url: str
    status: int | None
    etag: str | None = None
    last_modified: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Response:
    url: str  # where the answer came from, after redirects
    status: int | None
    content: bytes | None = None  # the body of a 200; None otherwise
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    error: str | None = None
    location: str | None = None  # the Location header of a redirect
    # Every request sent to get this answer, in order: robots.txt, retries, redirect hops, the
    # final one (absent when robots.txt or the host policy stopped the fetch before sending).
    exchanges: tuple[Exchange, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.content is not None and self.error is None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def header_charset(content_type: str | None) -> str | None:
    if not content_type:
        return None
    message = Message()
    message["content-type"] = content_type
    charset = message.get_param("charset")
    return charset.strip().lower() if isinstance(charset, str) and charset.strip() else None


def decode_body(content: bytes, content_type: str | None = None) -> str:
    """Text of a page: the header's charset, else the <meta> one, else what the bytes decode as."""
    charset = header_charset(content_type)
    if charset in _DEFAULT_CHARSETS:
        charset = None
    return decode_text(content, charset or declared_charset(content))


@dataclass(slots=True)
class _Robots:
    parser: RobotFileParser
    reason: str = "disallowed by robots.txt"


class PoliteClient:
    """GET with robots.txt, rate limit, retries, conditional requests, size cap, redirect policy.

    `validators(url)` returns the ETag and Last-Modified of the copy of `url` the caller holds
    (None when it holds none); they are sent with every request for that URL, redirect targets
    included, so the answer may be a 304 with no body.
    """

    def __init__(
        self,
        settings: ClientSettings | None = None,
        validators: Callable[[str], Validators | None] | None = None,
    ) -> None:
        self.settings = settings or ClientSettings()
        self._validators = validators or (lambda _url: None)
        self._http = httpx.Client(
            follow_redirects=False,
            timeout=httpx.Timeout(self.settings.timeout),
            headers={
                "User-Agent": self.settings.user_agent,
                "Accept-Language": "zh-CN,zh;q=0.9",
            },
        )
        self._robots: dict[str, _Robots] = {}
        self._next_request_at: dict[str, float] = {}
        self._clock = threading.Lock()  # guards _next_request_at
        self._robots_locks: dict[str, threading.Lock] = {}  # one per origin: fetched once
        self._robots_guard = threading.Lock()  # guards _robots_locks

    def __enter__(self) -> PoliteClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def get(self, url: str, hosts: Collection[str]) -> Response:
        """GET `url`, following redirects only to `hosts`; never raises for network trouble."""
        return self._request(url, hosts, None)

    def post(self, url: str, form: Mapping[str, str], hosts: Collection[str]) -> Response:
        """POST `form` to `url` (never conditional: an API answer has no copy to revalidate)."""
        return self._request(url, hosts, dict(form))

    def _request(self, url: str, hosts: Collection[str], form: dict[str, str] | None) -> Response:
        exchanges: list[Exchange] = []
        current = url
        for _hop in range(self.settings.max_redirects + 1):
            parts = urlsplit(current)
            if parts.scheme not in ("http", "https") or (parts.hostname or "") not in hosts:
                return Response(
                    current,
                    None,
                    error=f"not fetched: {parts.hostname or current} is not a host of this portal",
                    exchanges=tuple(exchanges),
                )
            robots = self._robots_for(current, exchanges)
            if not robots.parser.can_fetch(self.settings.user_agent, current):
                return Response(current, None, error=robots.reason, exchanges=tuple(exchanges))
            response = self._send(current, exchanges, conditional=form is None, form=form)
            if response.status not in REDIRECTS or not response.location:
                return response
            if response.status in _REDIRECTS_TO_GET:
                form = None
            current = urljoin(current, response.location)
        return Response(
            current,
            None,
            error=f"more than {self.settings.max_redirects} redirects",
            exchanges=tuple(exchanges),
        )

    def _robots_for(self, url: str, exchanges: list[Exchange]) -> _Robots:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin in self._robots:
            return self._robots[origin]
        with self._robots_guard:
            lock = self._robots_locks.setdefault(origin, threading.Lock())
        with lock:  # another thread may be fetching it: wait for its answer, do not ask twice
            if origin not in self._robots:
                self._robots[origin] = self._fetch_robots(origin, parts.hostname, exchanges)
        return self._robots[origin]

    def _fetch_robots(
        self, origin: str, hostname: str | None, exchanges: list[Exchange]
    ) -> _Robots:
        parser = RobotFileParser(origin + "/robots.txt")
        robots = _Robots(parser)
        target = origin + "/robots.txt"
        for _hop in range(self.settings.max_redirects + 1):
            response = self._send(target, exchanges, conditional=False)
            # Sites move robots.txt from http to https; follow that, but never to another host.
            if response.status not in REDIRECTS or not response.location:
                break
            target = urljoin(target, response.location)
            if urlsplit(target).hostname != hostname:
                break
        if response.ok:
            parser.parse(decode_body(response.content or b"", response.content_type).splitlines())
        elif response.status is not None and 300 <= response.status < 500:
            # RFC 9309: robots.txt "unavailable" (absent, forbidden, moved away) allows everything.
            parser.allow_all = True
        else:
            # RFC 9309: "unreachable" (5xx, network down) means assume everything is disallowed.
            parser.disallow_all = True
            robots.reason = f"robots.txt unreachable ({response.error or response.status})"
        return robots

    def _interval(self, url: str) -> float:
        parts = urlsplit(url)
        robots = self._robots.get(f"{parts.scheme}://{parts.netloc}")
        delay = robots.parser.crawl_delay(self.settings.user_agent) if robots else None
        return max(self.settings.min_interval, float(delay or 0))

    def _wait_for_turn(self, url: str) -> None:
        host = urlsplit(url).netloc
        interval = self._interval(url)
        with self._clock:  # book the slot under the lock, sleep outside it
            now = time.monotonic()
            start = max(now, self._next_request_at.get(host, now))
            self._next_request_at[host] = start + interval
        if start > now:
            time.sleep(start - now)

    def _hold_host(self, url: str, seconds: float) -> None:
        """No request to the host of `url` for `seconds` (it said Retry-After), from any thread."""
        host = urlsplit(url).netloc
        with self._clock:
            until = time.monotonic() + seconds
            self._next_request_at[host] = max(self._next_request_at.get(host, 0.0), until)

    def _send(
        self,
        url: str,
        exchanges: list[Exchange],
        *,
        conditional: bool,
        form: dict[str, str] | None = None,
    ) -> Response:
        """One URL, with retries; every attempt is appended to `exchanges`."""
        attempt = 0
        while True:
            self._wait_for_turn(url)
            response, transient, retry_after = self._attempt(url, conditional, form)
            if retry_after is not None and retry_after > self.settings.max_retry_after:
                transient = False
                response = replace(
                    response,
                    error=f"{response.error}: Retry-After {retry_after:.0f} s is longer than "
                    f"the {self.settings.max_retry_after:.0f} s waited at most",
                )
            exchanges.append(
                Exchange(
                    url, response.status, response.etag, response.last_modified, response.error
                )
            )
            if not transient or attempt >= self.settings.retries:
                return replace(response, exchanges=tuple(exchanges))
            if retry_after is not None:
                self._hold_host(url, retry_after)
            else:
                time.sleep(self.settings.backoff * 2**attempt)
            attempt += 1

    def _attempt(
        self, url: str, conditional: bool, form: dict[str, str] | None = None
    ) -> tuple[Response, bool, float | None]:
        """One request: the response, whether it failed in a way worth retrying, and the
        seconds the server asked to wait before the next one (Retry-After), if it did."""
        headers: dict[str, str] = {}
        held = self._validators(url) if conditional else None
        if held:
            etag, last_modified = held
            if etag:
                headers["If-None-Match"] = etag
            if last_modified:
                headers["If-Modified-Since"] = last_modified
        try:
            with self._http.stream(
                "POST" if form is not None else "GET", url, headers=headers, data=form
            ) as reply:
                status = reply.status_code
                answer = Response(
                    url,
                    status,
                    content_type=reply.headers.get("content-type"),
                    etag=reply.headers.get("etag"),
                    last_modified=reply.headers.get("last-modified"),
                    location=reply.headers.get("location") if status in REDIRECTS else None,
                )
                if status != 200:
                    error = None if status in (304, *REDIRECTS) else f"HTTP {status}"
                    retry_after = (
                        retry_after_seconds(reply.headers.get("retry-after"))
                        if status in (429, 503)
                        else None
                    )
                    return replace(answer, error=error), status >= 500 or status == 429, retry_after
                body = _read_capped(reply, self.settings.max_bytes)
                if body is None:
                    error = f"larger than the {self.settings.max_bytes}-byte limit: not kept"
                    return replace(answer, error=error), False, None
                return replace(answer, content=body), False, None
        except httpx.TimeoutException as exc:
            return Response(url, None, error=f"timeout ({type(exc).__name__})"), True, None
        except httpx.TransportError as exc:
            return Response(url, None, error=f"{type(exc).__name__}: {exc}"), True, None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:  # a corrupt gzip body, a malformed URL
            return Response(url, None, error=f"{type(exc).__name__}: {exc}"), False, None


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds a Retry-After header asks for (a number, or an HTTP date); None when absent or bad."""
    if not value or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def _read_capped(reply: httpx.Response, max_bytes: int) -> bytes | None:
    """The body, or None once it is known to exceed `max_bytes` (the rest is never read)."""
    declared = reply.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        return None
    chunks: list[bytes] = []
    size = 0
    for chunk in reply.iter_bytes():
        size += len(chunk)
        if size > max_bytes:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
