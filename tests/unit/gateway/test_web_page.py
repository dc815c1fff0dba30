"""The web page's document and assets as the gateway serves them: a strict Content-Security-Policy
that allows the page's own import map by its hash and nothing from another host."""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.gateway.web import mount


def client() -> TestClient:
    app = FastAPI()
    mount(app)
    return TestClient(app)


def test_the_page_is_served_under_a_strict_policy() -> None:
    answer = client().get("/app")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    policy = dict(part.strip().split(" ", 1) for part in answer.headers["content-security-policy"].split(";"))
    assert policy["default-src"] == "'none'"
    assert policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in answer.headers["content-security-policy"]
    assert "unsafe-eval" not in answer.headers["content-security-policy"]
    import_map = re.search(r'<script type="importmap">(.*?)</script>', answer.text, re.DOTALL)
    assert import_map is not None
    digest = base64.b64encode(hashlib.sha256(import_map.group(1).encode()).digest()).decode()
    assert policy["script-src"] == f"'self' 'sha256-{digest}'"
    # every script and style the page names is the gateway's own
    for ref in re.findall(r'(?:src|href)="([^"]+)"', answer.text):
        assert ref.startswith(("/app/static/", "data:")), ref


def test_assets_and_vendored_libraries_are_served() -> None:
    c = client()
    for path in ("app.js", "api.js", "app.css", "messages.json", "vendor/preact/preact.mjs",
                 "vendor/preact/hooks.mjs", "vendor/htm/htm.mjs", "vendor/chartjs/chart.umd.min.js"):  # fmt: skip
        assert c.get(f"/app/static/{path}").status_code == 200, path
    assert c.get("/app/static/../routes.py").status_code == 404
    assert c.get("/app/", follow_redirects=False).headers["location"] == "/app"


def test_the_scripts_name_no_other_host() -> None:
    c = client()
    for path in ("app.js", "api.js", "ui.js", "reports.js", "report.js", "rows.js", "connections.js"):
        # (a bare "https://" is the placeholder of the API address field)
        assert not re.search(r"https?://\w", c.get(f"/app/static/{path}").text), path
