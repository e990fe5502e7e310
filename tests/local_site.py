"""A small web site on 127.0.0.1 for the feed, page and Slack-link tests: pages, feeds, redirects, slow and
oversized answers, ETag / Last-Modified with 304s, and a record of every request. Never the internet."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    headers: dict = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    delay_s: float = 0.0
    declare_length: bool = True  # False: no Content-Length, the body ends when the connection closes


@dataclass
class Hit:
    path: str
    headers: dict


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class LocalSite:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: list[Hit] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> "LocalSite":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def serve(self, path: str, body: str | bytes, content_type: str = "text/html; charset=utf-8", **options) -> str:
        self.routes[path] = Route(body.encode("utf-8") if isinstance(body, str) else body, content_type, **options)
        return self.url(path)

    def redirect(self, path: str, location: str, status: int = 301) -> str:
        return self.serve(path, b"", status=status, headers={"Location": location})

    def requests_to(self, path: str) -> list[Hit]:
        with self._lock:
            return [hit for hit in self.hits if hit.path == path]

    def _handler(self):
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                with site._lock:
                    site.hits.append(Hit(self.path, dict(self.headers)))
                route = site.routes.get(self.path)
                if route is None:
                    self.send_error(404, "Not Found")
                    return
                if route.delay_s:
                    time.sleep(route.delay_s)
                validators = {"ETag": route.etag, "Last-Modified": route.last_modified}
                # as HTTP says: If-None-Match, when sent, decides; If-Modified-Since only without it
                if ("If-None-Match" in self.headers and self.headers["If-None-Match"] == route.etag) or (
                        "If-None-Match" not in self.headers and route.last_modified
                        and self.headers.get("If-Modified-Since") == route.last_modified):
                    self.send_response(304)
                    for name, value in validators.items():
                        if value:
                            self.send_header(name, value)
                    self.end_headers()
                    return
                self.send_response(route.status)
                self.send_header("Content-Type", route.content_type)
                for name, value in {**route.headers, **validators}.items():
                    if value:
                        self.send_header(name, value)
                if route.declare_length:
                    self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                try:
                    self.wfile.write(route.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading (a size limit)

            def log_message(self, *args):
                pass

        return Handler


def article_page(title: str, paragraphs: list[str], published: str = "2024-03-06", site_name: str = "Harbour Gazette"
                 ) -> str:
    """A news page as a CMS would serve it: head metadata, navigation, the story, a footer."""
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (f"<!DOCTYPE html><html><head><title>{title} | {site_name}</title>"
            f'<meta property="og:title" content="{title}"><meta property="og:site_name" content="{site_name}">'
            f'<meta property="article:published_time" content="{published}T08:00:00Z"></head><body>'
            f"<nav><a href='/'>Home</a> | <a href='/news'>News</a></nav><article><h1>{title}</h1>{body}</article>"
            f"<footer>Subscribe to our newsletter</footer></body></html>")
