"""Fetching pages and feeds over HTTP(S), with the checks a newsroom's ingest needs.

Every fetch has a time limit (for the whole download, not only each read), a size limit, a
`User-Agent`, and follows at most a few redirects, each checked: only http and https are
fetched, before and after every redirect. A conditional request (ETag / Last-Modified) that the
server answers 304 comes back as `not_modified` with no body. Every failure is one line naming
the URL.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from email.message import Message
from urllib.parse import urldefrag, urljoin, urlsplit

import requests

from retrieval.errors import BylineError

FETCHABLE_SCHEMES = ("http", "https")
REDIRECTS = (301, 302, 303, 307, 308)


@dataclass
class Fetched:
    url: str  # as asked for
    final_url: str  # after redirects
    content: bytes
    content_type: str  # the media type alone, lower case ("text/html")
    charset: str | None
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False


def is_url(source: str) -> bool:
    return bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", source))


def check_scheme(url: str, where: str | None = None) -> None:
    scheme = urlsplit(url).scheme.lower()
    if scheme not in FETCHABLE_SCHEMES:
        prefix = f"{where}: " if where else ""
        raise BylineError(f"{prefix}{url}: only http and https links are fetched, not {scheme or 'a relative'}: URLs")


def url_doc_id(url: str) -> str:
    """A stable, readable article id for a URL: host and path as a slug, and a short hash."""
    url = urldefrag(url)[0]
    parts = urlsplit(url)
    slug = re.sub(r"[^a-z0-9]+", "-", f"{parts.hostname or ''}{parts.path}".lower()).strip("-")
    return f"{slug[-60:].lstrip('-') or 'page'}-{hashlib.sha1(url.encode()).hexdigest()[:8]}"


class Fetcher:
    """GET with a timeout, a size limit, a User-Agent and checked redirects (see the module doc)."""

    def __init__(self, timeout_s: float = 10.0, max_bytes: int = 10_000_000, user_agent: str = "Byline",
                 max_redirects: int = 5) -> None:
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.user_agent = user_agent
        self.max_redirects = max_redirects
        self.session = requests.Session()
        self.session.trust_env = False  # no proxies or .netrc credentials from the environment

    @classmethod
    def from_config(cls, config: dict) -> "Fetcher":
        fetch = config.get("fetch") or {}
        return cls(timeout_s=float(fetch.get("timeout_s") or 10), max_bytes=int(config["chunking"]["max_file_bytes"]),
                   user_agent=str(fetch.get("user_agent") or "Byline"),
                   max_redirects=int(fetch.get("max_redirects") or 5))

    def get(self, url: str, *, etag: str | None = None, last_modified: str | None = None,
            authorization: str | None = None) -> Fetched:
        """The body at `url`; `authorization` (a header value) is sent to the first host only."""
        check_scheme(url)
        headers = {"User-Agent": self.user_agent, "Accept-Encoding": "gzip, deflate"}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        first_host = urlsplit(url).netloc.lower()
        deadline = time.monotonic() + self.timeout_s
        current = url
        for _ in range(self.max_redirects + 1):
            request_headers = dict(headers)
            if authorization and urlsplit(current).netloc.lower() == first_host:
                request_headers["Authorization"] = authorization
            response = self._send(url, current, request_headers, deadline)
            if response.status_code in REDIRECTS and response.headers.get("Location"):
                response.close()
                following = urljoin(current, response.headers["Location"])
                scheme = urlsplit(following).scheme.lower()
                if scheme not in FETCHABLE_SCHEMES:
                    raise BylineError(f"{url}: redirected to a {scheme}: URL; only http and https links are fetched")
                current = following
                continue
            with response:
                return self._read(url, current, response, deadline)
        raise BylineError(f"{url}: more than {self.max_redirects} redirects")

    def _send(self, url: str, current: str, headers: dict, deadline: float) -> requests.Response:
        remaining = max(deadline - time.monotonic(), 0.001)
        try:
            return self.session.get(current, headers=headers, stream=True, allow_redirects=False,
                                    timeout=(remaining, remaining))
        except requests.Timeout:
            raise BylineError(f"{url}: no answer within {self.timeout_s:g} s") from None
        except requests.ConnectionError as exc:
            raise BylineError(f"{url}: cannot connect ({_reason(exc)})") from None
        except requests.RequestException as exc:
            raise BylineError(f"{url}: cannot fetch ({exc.__class__.__name__})") from None

    def _read(self, url: str, current: str, response: requests.Response, deadline: float) -> Fetched:
        headers = response.headers
        if response.status_code == 304:
            return Fetched(url, current, b"", "", None, headers.get("ETag"), headers.get("Last-Modified"),
                           not_modified=True)
        if response.status_code != 200:
            raise BylineError(f"{url}: the server answered {response.status_code} {response.reason or ''}".rstrip())
        limit = f"the {self.max_bytes / 1e6:g} MB limit for one page"
        declared = headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            raise BylineError(f"{url}: {int(declared) / 1e6:.1f} MB is over {limit}")
        body = bytearray()
        try:
            for piece in response.iter_content(64 * 1024):
                body += piece
                if len(body) > self.max_bytes:
                    raise BylineError(f"{url}: more than {limit}")
                if time.monotonic() > deadline:
                    raise BylineError(f"{url}: not downloaded within {self.timeout_s:g} s")
        except requests.RequestException as exc:
            if isinstance(exc, (requests.Timeout, requests.ConnectionError)) and time.monotonic() > deadline - 0.05:
                raise BylineError(f"{url}: not downloaded within {self.timeout_s:g} s") from None
            raise BylineError(f"{url}: the download broke off ({_reason(exc)})") from None
        media = Message()
        media["Content-Type"] = headers.get("Content-Type") or "application/octet-stream"
        return Fetched(url, current, bytes(body), media.get_content_type(), media.get_param("charset"),
                       headers.get("ETag"), headers.get("Last-Modified"))


def _reason(exc: Exception) -> str:
    """What went wrong, in a few words ("Connection refused"), from a requests error's text."""
    match = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", str(exc))
    return match.group(1).strip() if match else exc.__class__.__name__
