"""The web console's static files, served next to the API as CloudFront serves them from S3 in the cloud.

Locally the console and the API share one origin (http://localhost:3000), so `config.json` tells the console to
call the API on its own origin; in the cloud the stack writes the API's URL into it (infra/capabilities/console.py).
The security headers follow the cloud's response headers policy, except that `connect-src` is the console's own
origin here instead of the API's.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote

from wabacast_local.http_api import HttpResponse

CONFIG_FILE = "config.json"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
}
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    # Edits to the console show on the next reload while developing.
    ("cache-control", "no-cache"),
)


def default_console_dir() -> Path:
    """`console/` of the checkout this package is installed from (the install is editable)."""
    return Path(__file__).resolve().parents[2] / "console"


def is_console_path(raw_path: str) -> bool:
    """Everything outside /api belongs to the console."""
    return raw_path != "/api" and not raw_path.startswith("/api/")


class ConsoleSite:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def respond(self, method: str, raw_path: str) -> HttpResponse:
        if method not in ("GET", "HEAD"):
            return _plain(405, "Method Not Allowed", [("allow", "GET, HEAD")])
        relative = unquote(raw_path).lstrip("/") or "index.html"
        if relative == CONFIG_FILE:
            # "" = the origin the console was loaded from.
            return self._file_response(json.dumps({"apiUrl": ""}).encode(), ".json")
        path = (self.root / relative).resolve()
        inside = path == self.root or self.root in path.parents
        if not inside or any(part.startswith(".") for part in path.relative_to(self.root).parts) or not path.is_file():
            return _plain(404, "Not Found")
        return self._file_response(path.read_bytes(), path.suffix)

    @staticmethod
    def _file_response(body: bytes, suffix: str) -> HttpResponse:
        content_type = CONTENT_TYPES.get(suffix.lower(), "application/octet-stream")
        return HttpResponse(200, [("content-type", content_type), *SECURITY_HEADERS], body)


def _plain(status: int, message: str, extra: list[tuple[str, str]] | None = None) -> HttpResponse:
    body = json.dumps({"message": message}).encode()
    return HttpResponse(status, [("content-type", "application/json"), *SECURITY_HEADERS, *(extra or [])], body)
