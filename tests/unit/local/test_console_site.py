"""The console's static files next to the API: which paths are the console's, what is served, and how."""

from __future__ import annotations

import json

import httpx
import pytest

from wabacast_local.console_site import ConsoleSite, default_console_dir, is_console_path
from wabacast_local.http_api import HttpApi, Route
from wabacast_local.http_server import HttpApiServer
from wabacast_local.lambda_runtime import FunctionConfig, LocalLambdaFunction


@pytest.fixture
def site_root(tmp_path):
    root = tmp_path / "console"
    (root / "js").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><title>console</title>")
    (root / "js" / "app.js").write_text("export {};")
    (root / ".hidden").write_text("not for the web")
    (tmp_path / "secret.txt").write_text("outside the site")
    return root


def headers_of(response):
    return {name.lower(): value for name, value in response.headers}


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/", True), ("/index.html", True), ("/js/app.js", True), ("/apidocs", True), ("/api", False), ("/api/x", False)],
)
def test_every_path_outside_api_is_the_consoles(path, expected):
    assert is_console_path(path) is expected


def test_root_serves_index_with_security_headers(site_root):
    # GIVEN the site
    site = ConsoleSite(site_root)

    # WHEN the root is requested
    response = site.respond("GET", "/")

    # THEN index.html comes back as HTML, with the same kind of headers CloudFront adds in the cloud
    assert response.status == 200
    assert response.body.startswith(b"<!doctype html>")
    headers = headers_of(response)
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"


def test_modules_are_served_as_javascript(site_root):
    response = ConsoleSite(site_root).respond("GET", "/js/app.js")
    assert response.status == 200
    assert headers_of(response)["content-type"] == "text/javascript; charset=utf-8"


def test_config_points_the_console_at_its_own_origin(site_root):
    # GIVEN / WHEN the console asks where the API is
    response = ConsoleSite(site_root).respond("GET", "/config.json")

    # THEN the answer is "here" (locally the API and the console share one origin)
    assert response.status == 200
    assert json.loads(response.body) == {"apiUrl": ""}


@pytest.mark.parametrize("path", ["/missing.js", "/../secret.txt", "/%2e%2e/secret.txt", "/.hidden", "/js"])
def test_nothing_outside_the_site_or_hidden_is_served(site_root, path):
    response = ConsoleSite(site_root).respond("GET", path)
    assert response.status == 404
    assert b"outside the site" not in response.body


def test_other_methods_are_refused(site_root):
    response = ConsoleSite(site_root).respond("POST", "/")
    assert response.status == 405
    assert headers_of(response)["allow"] == "GET, HEAD"


def test_the_checkout_has_the_console():
    # The stack serves console/ of the checkout by default.
    assert (default_console_dir() / "index.html").is_file()


def test_listener_serves_the_console_and_still_routes_the_api(site_root):
    # GIVEN a listener with the console and one API route
    def handler(event, context):
        return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": '{"api": true}'}

    api = LocalLambdaFunction(FunctionConfig(name="api"), handler)
    server = HttpApiServer(
        HttpApi(routes=[Route("GET", "/api/openapi.json", api)]), port=0, console=ConsoleSite(site_root)
    )
    server.start()
    try:
        with httpx.Client(base_url=server.url) as client:
            # WHEN both are requested over HTTP
            page = client.get("/")
            described = client.get("/api/openapi.json")
            unknown = client.get("/api/nothing")
    finally:
        server.stop()

    # THEN the console's file and the API's answer both come back, and /api stays the gateway's
    assert page.status_code == 200
    assert page.text.startswith("<!doctype html>")
    assert described.json() == {"api": True}
    assert unknown.status_code == 404
    assert unknown.json() == {"message": "Not Found"}
