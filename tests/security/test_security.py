"""Security checks against the running system (every service its own process).

- every operation of the served OpenAPI document refuses missing, malformed and revoked tokens;
- another user's reports, source reports and sales are 404 on every route that takes their id,
  and another user's connections (and their sources and commands) on every /connections route;
- tokens are stored only as hashes, credentials only encrypted: no log line or Mongo document
  holds a plaintext token or connection password;
- query parameters and bodies cannot smuggle Mongo operators;
- the upload limit is enforced before the body is read.
"""

from __future__ import annotations

import hashlib
import re
import socket
import subprocess
import sys
import time
from typing import Any

import bson
import httpx
import pytest

from tests.e2e.conftest import Stack
from tests.infra import ROOT
from tests.workbooks import CAMPAIGN_ROWS, RU_HEADERS, workbook_bytes

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CHANNEL = -1001234567890
PUBLIC = {"/health", "/ready", "/metrics"}  # probes and scraping: deliberately unauthenticated
SAMPLE_PARAMS: dict[str, Any] = {
    "channel_id": CHANNEL, "name": "x", "budget": 1, "status": "sale", "report_id": "0" * 32,
    "source_report_id": "0" * 32, "format": "xlsx",
}  # fmt: skip


def _operations(stack: Stack) -> list[tuple[str, str, dict[str, Any]]]:
    spec = httpx.get(f"{stack.gateway_url}/openapi.json", timeout=10).json()
    ops = []
    for path, item in spec["paths"].items():
        if path in PUBLIC:
            continue
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                ops.append((method, path, op))
    return ops


def _call(
    stack: Stack, method: str, path: str, op: dict[str, Any], headers: dict[str, str], **fill: Any
) -> httpx.Response:
    values = {**SAMPLE_PARAMS, **fill}
    url = stack.gateway_url + re.sub(r"\{(\w+)\}", lambda m: str(values.get(m.group(1), "x")), path)
    params = {
        p["name"]: values[p["name"]] for p in op.get("parameters", []) if p["in"] == "query" and p["name"] in values
    }
    kwargs: dict[str, Any] = {"params": params, "headers": headers, "timeout": 30}
    content = (op.get("requestBody") or {}).get("content", {})
    if "multipart/form-data" in content:
        kwargs["files"] = {"file": ("a.xlsx", workbook_bytes(RU_HEADERS, CAMPAIGN_ROWS), XLSX)}
    elif "application/json" in content:
        kwargs["json"] = REPORT_BODIES.get((method, path)) or {"report_id": values["report_id"], **fill.get("json", {})}
    return httpx.request(method.upper(), url, **kwargs)


# Report routes whose JSON body is not `{"report_id"}` (the id is in their path): a valid body each.
REPORT_BODIES: dict[tuple[str, str], Any] = {
    ("put", "/sales/analytic/report/{report_id}/exchange-rates"): {"USD": 95},
    ("put", "/sales/analytic/report/{report_id}/links/costs"): {"https://t.me/+security": 100},
}


def _token_cli(stack: Stack, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "services.gateway.tokens", *args], env=stack.env, check=True, cwd=ROOT,
                   capture_output=True)  # fmt: skip


@pytest.fixture(scope="module")
def revoked(stack: Stack) -> str:
    token = stack.token("sec-revoked")
    _token_cli(stack, "revoke", token)
    return token


def test_every_operation_refuses_bad_tokens(stack: Stack, revoked: str) -> None:
    good = stack.token("sec-alice")
    bad_headers: dict[str, dict[str, str]] = {
        "missing": {},
        "empty bearer": {"Authorization": "Bearer"},
        "basic": {"Authorization": "Basic c2VjLWFsaWNlOnB3"},
        "garbage": {"Authorization": "Bearer not-a-token"},
        "truncated": {"Authorization": f"Bearer {good[:-1]}"},
        "stored hash as token": {"Authorization": f"Bearer {hashlib.sha256(good.encode()).hexdigest()}"},
        "huge": {"Authorization": "Bearer " + "A" * 20_000},
        "revoked": {"Authorization": f"Bearer {revoked}"},
    }
    ops = _operations(stack)
    assert len(ops) >= 4
    failures = []
    for method, path, op in ops:
        for label, headers in bad_headers.items():
            r = _call(stack, method, path, op, headers)
            if r.status_code != 401:
                failures.append((method, path, label, r.status_code))
    print(f"\n{len(ops)} operations × {len(bad_headers)} bad credentials checked")
    assert failures == []


@pytest.fixture(scope="module")
def alice_report(stack: Stack) -> dict[str, Any]:
    r = httpx.post(
        f"{stack.gateway_url}/sales/create",
        params={"channel_id": CHANNEL, "name": "secret campaign", "budget": "1000"},
        files={"file": ("c.xlsx", workbook_bytes(RU_HEADERS, CAMPAIGN_ROWS), XLSX)},
        headers=stack.headers("sec-alice"),
        timeout=120,
    )
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 60
    while True:
        body: dict[str, Any] = httpx.post(
            f"{stack.gateway_url}/sales/analytic/report", json={"report_id": r.json()["report_id"]},
            headers=stack.headers("sec-alice"), timeout=10,
        ).json()  # fmt: skip
        if body["status"] in ("success", "failed") or time.monotonic() > deadline:
            return body
        time.sleep(0.2)


def test_another_users_objects_are_404_on_every_route(stack: Stack, alice_report: dict[str, Any]) -> None:
    ids = {"report_id": alice_report["id"], "source_report_id": alice_report["source_reports"][0]["id"]}
    checked = []
    for method, path, op in _operations(stack):
        names = {p["name"] for p in op.get("parameters", [])}
        body_has_report = "application/json" in (op.get("requestBody") or {}).get("content", {})
        if path.startswith("/connections"):
            continue  # connection objects need a connection of the owner; not covered here
        if not (names & set(ids)) and not body_has_report:
            continue
        own = _call(stack, method, path, op, stack.headers("sec-alice"), **ids)
        other = _call(stack, method, path, op, stack.headers("sec-bob"), **ids)
        checked.append((method, path, own.status_code, other.status_code))
    print(f"\nowner vs other user: {checked}")
    assert checked, "no operation takes a report or source report id"
    assert all(own < 300 for _, _, own, _ in checked), checked  # the owner can read them
    assert all(other == 404 for _, _, _, other in checked), checked
    listing = httpx.get(f"{stack.gateway_url}/sales/analytic", params={"channel_id": CHANNEL},
                        headers=stack.headers("sec-bob"), timeout=10)  # fmt: skip
    assert listing.status_code == 200 and alice_report["id"] not in [i["id"] for i in listing.json()]


# A valid body for every /connections operation that takes one (a new route must be added here).
CONNECTION_BODIES: dict[tuple[str, str], Any] = {
    ("post", "/connections"): None,  # creates: nothing of another user's to reach
    ("get", "/connections"): None,  # lists the caller's own: checked below
    ("patch", "/connections/{connection_id}"): {"name": "renamed"},
    ("post", "/connections/{connection_id}/sources"): {
        "report_id": "", "period_start": "2024-01-01", "period_end": "2024-01-31"},
    ("post", "/connections/{connection_id}/sync"): {"source_report_id": ""},
    ("post", "/connections/{connection_id}/sweetclub/sales"): {
        "brand_id": "1", "product_type": "2", "product_quantity": "1", "product_unit": "1",
        "product_price": "10", "sale_channel_id": "1"},
    ("post", "/connections/{connection_id}/sweetclub/refunds"): {"sale_id": "40001", "return_reason_id": "3"},
}  # fmt: skip


def test_another_users_connections_are_404_on_every_route(stack: Stack, alice_report: dict[str, Any]) -> None:
    alice, bob, base = stack.headers("sec-alice"), stack.headers("sec-bob"), stack.gateway_url
    # A SweetClub connection to a closed port: every route of the kind applies, no live platform needed.
    conn = httpx.post(f"{base}/connections", headers=alice, timeout=10, json={
        "kind": "sweetclub", "channel_id": CHANNEL, "base_url": "http://127.0.0.1:9",
        "credentials": {"username": "sec-user", "password": "sec-pass-81c2"}, "poll_interval_seconds": 0}).json()  # fmt: skip
    source = httpx.post(f"{base}/connections/{conn['id']}/sources", headers=alice, timeout=10, json={
        **CONNECTION_BODIES[("post", "/connections/{connection_id}/sources")], "report_id": alice_report["id"]}).json()  # fmt: skip
    command = httpx.post(f"{base}/connections/{conn['id']}/check", params={"wait": 0}, headers=alice, timeout=10)
    ids = {"connection_id": conn["id"], "source_report_id": source["id"], "request_id": command.json()["request_id"]}
    bodies = {**CONNECTION_BODIES, ("post", "/connections/{connection_id}/sync"): {"source_report_id": source["id"]}}
    bodies[("post", "/connections/{connection_id}/sources")] = {
        **CONNECTION_BODIES[("post", "/connections/{connection_id}/sources")], "report_id": alice_report["id"]}  # fmt: skip
    deletes, checked = [], []
    for method, path, _ in _operations(stack):
        if not path.startswith("/connections"):
            continue
        if "{" not in path:
            assert (method, path) in CONNECTION_BODIES, (method, path)
            continue
        if method == "delete":
            deletes.append(path)
            continue
        assert (method, path) in bodies or method == "get" or path.endswith("/check"), (
            f"no sample body: {method} {path}"
        )
        url = base + re.sub(r"\{(\w+)\}", lambda m: str(ids[m.group(1)]), path)
        kwargs: dict[str, Any] = {"params": {"wait": 0}, "timeout": 30}
        if bodies.get((method, path)) is not None:
            kwargs["json"] = bodies[(method, path)]
        other = httpx.request(method.upper(), url, headers=bob, **kwargs)
        own = httpx.request(method.upper(), url, headers=alice, **kwargs)
        checked.append((method, path, own.status_code, other.status_code))
    for path in deletes:  # last, the other user first: the owner's delete removes the connection
        url = base + re.sub(r"\{(\w+)\}", lambda m: str(ids[m.group(1)]), path)
        other_status = httpx.delete(url, headers=bob, timeout=10).status_code
        checked.append(("delete", path, httpx.delete(url, headers=alice, timeout=10).status_code, other_status))
    print(f"\nconnections, owner vs other user: {checked}")
    assert len(checked) >= 9, checked
    assert all(own < 300 for _, _, own, _ in checked), checked  # the owner reaches all of it
    assert all(other == 404 for _, _, _, other in checked), checked
    listing = httpx.get(f"{base}/connections", headers=bob, timeout=10)
    assert listing.status_code == 200 and conn["id"] not in [c["id"] for c in listing.json()]


def test_tokens_are_stored_hashed_and_never_logged(stack: Stack, alice_report: dict[str, Any], revoked: str) -> None:
    tokens = [stack.token("sec-alice"), stack.token("sec-bob"), revoked]
    # exercise failure paths too, so that error logging is covered
    for t in tokens:
        httpx.get(f"{stack.gateway_url}/sales/analytic", params={"channel_id": "bad"},
                  headers={"Authorization": f"Bearer {t}"}, timeout=10)  # fmt: skip
        httpx.get(f"{stack.gateway_url}/sales/analytic", params={"channel_id": 1},
                  headers={"Authorization": f"Bearer {t}x"}, timeout=10)  # fmt: skip
    # and a connection whose live check fails (closed port): its credentials go through the
    # gateway, the broker, the connectors service and its error path
    password = "sec-conn-pass-5be1"
    conn = httpx.post(f"{stack.gateway_url}/connections", headers=stack.headers("sec-alice"), timeout=10, json={
        "kind": "sweetclub", "channel_id": CHANNEL, "base_url": "http://127.0.0.1:9",
        "credentials": {"username": "sec-conn-user", "password": password}, "poll_interval_seconds": 0}).json()  # fmt: skip
    check = httpx.post(f"{stack.gateway_url}/connections/{conn['id']}/check", params={"wait": 30},
                       headers=stack.headers("sec-alice"), timeout=40).json()  # fmt: skip
    assert check["state"] in ("failed", "rejected"), check
    db = stack.db()
    stored = {doc["_id"] for doc in db.tokens.find({}, {"_id": 1})}
    for t in tokens:
        assert hashlib.sha256(t.encode()).hexdigest() in stored
    needles = [t.encode() for t in tokens] + [t.split("_", 1)[-1].encode() for t in tokens] + [password.encode()]
    hits = []
    scanned = 0
    for name in db.list_collection_names():
        for doc in db[name].find({}):
            raw = bson.encode(doc)
            scanned += 1
            hits += [(name, doc.get("_id")) for n in needles if n in raw]
    logs = [p.log_path for p in stack.processes.values()]
    for path in logs:
        text = path.read_bytes()
        hits += [(str(path), "log") for n in needles if n in text]
    print(
        f"\nscanned {scanned} documents and {len(logs)} service logs for {len(tokens)} plaintext tokens and a connection password"
    )
    assert hits == []


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/sales/analytic", {"channel_id": CHANNEL, "order_by": "$where"}),
        ("/sales/analytic", {"channel_id": '{"$gt": ""}'}),
        ("/sales/analytic", {"channel_id[$ne]": 1}),
        ("/sales/analytic", {"channel_id": CHANNEL, "order_dir": '{"$gt": ""}'}),
        ("SALES", {"status": '{"$gt": ""}'}),
        ("SALES", {"status[$ne]": "x"}),
        ("SALES", {"status": "sale", "order_by": "$where"}),
        ("SALES", {"status": "sale", "is_premium": '{"$ne": null}'}),
        ("SALES", {"status": "sale", "start_date": '{"$gt": ""}'}),
    ],
)
def test_query_parameters_cannot_carry_mongo_operators(
    stack: Stack,
    alice_report: dict[str, Any],
    path: str,
    params: dict[str, Any],
) -> None:
    if path == "SALES":
        path = f"/sales/analytic/{CHANNEL}/{alice_report['source_reports'][0]['id']}/sales"
    r = httpx.get(stack.gateway_url + path, params=params, headers=stack.headers("sec-alice"), timeout=10)
    assert r.status_code == 422, (params, r.status_code, r.text[:200])


def test_operator_strings_are_literals_and_bodies_cannot_carry_operators(
    stack: Stack, alice_report: dict[str, Any]
) -> None:
    src = alice_report["source_reports"][0]["id"]
    url = f"{stack.gateway_url}/sales/analytic/{CHANNEL}/{src}/sales"
    r = httpx.get(url, params={"status": "sale", "product": '{"$ne": null}'}, headers=stack.headers("sec-alice"))
    assert r.status_code == 200 and r.json() == []
    for body in ({"report_id": {"$ne": None}}, {"report_id": {"$gt": ""}}, {"report_id": ["x"]}):
        r = httpx.post(f"{stack.gateway_url}/sales/analytic/report", json=body, headers=stack.headers("sec-bob"))
        assert r.status_code == 422, (body, r.status_code)
    r = httpx.post(f"{stack.gateway_url}/sales/analytic/report", json={"report_id": "$where"},
                   headers=stack.headers("sec-bob"))  # fmt: skip
    assert r.status_code == 404
    # A source report id that looks like an operator is just an unknown id.
    r = httpx.get(f"{stack.gateway_url}/sales/analytic/{CHANNEL}/$ne/sales", params={"status": "sale"},
                  headers=stack.headers("sec-alice"))  # fmt: skip
    assert r.status_code == 404


def _raw_request(stack: Stack, head: str, body_parts: list[bytes], pause: float) -> tuple[bytes, int, float]:
    """Sends the head, then the body slowly; returns (response, body bytes sent, seconds to answer)."""
    port = stack.processes["gateway"].port
    sent = 0
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(head.encode())
        s.settimeout(pause)
        for part in body_parts:
            try:
                data = s.recv(65536)
                if data:
                    return data, sent, time.monotonic() - started
            except TimeoutError:
                pass
            try:
                s.sendall(part)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(part)
        s.settimeout(10)
        try:
            return s.recv(65536), sent, time.monotonic() - started
        except (TimeoutError, ConnectionResetError):
            return b"", sent, time.monotonic() - started


def _multipart_head(stack: Stack, content_length: int | None) -> tuple[str, bytes]:
    boundary = "sw-boundary-123"
    length = f"Content-Length: {content_length}\r\n" if content_length is not None else "Transfer-Encoding: chunked\r\n"
    head = (
        f"POST /sales/create?channel_id={CHANNEL}&name=big&budget=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {stack.token('sec-alice')}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n{length}\r\n"
    )
    preamble = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.xlsx"\r\n'
        f"Content-Type: {XLSX}\r\n\r\nPK\x03\x04"
    ).encode()
    return head, preamble


def test_declared_oversize_upload_is_413_before_the_body_is_sent(stack: Stack) -> None:
    limit = stack.settings.max_upload_bytes
    head, preamble = _multipart_head(stack, limit * 20)
    parts = [preamble] + [b"\0" * 65536] * 20
    answer, sent, seconds = _raw_request(stack, head, parts, pause=0.25)
    print(f"\ndeclared {limit * 20} bytes: answer after {sent} body bytes, {seconds:.2f}s: {answer[:12]!r}")
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < limit // 10


def test_streamed_oversize_upload_is_cut_off_at_the_limit(stack: Stack) -> None:
    limit = stack.settings.max_upload_bytes
    head, preamble = _multipart_head(stack, None)
    block = b"\0" * (256 * 1024)

    def chunk(data: bytes) -> bytes:
        return f"{len(data):x}\r\n".encode() + data + b"\r\n"

    parts = [chunk(preamble)] + [chunk(block)] * (limit // len(block) * 3)
    answer, sent, seconds = _raw_request(stack, head, parts, pause=0.02)
    print(f"\nchunked body: answer after {sent} bytes ({sent / limit:.2f}× the limit), {seconds:.2f}s")
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < limit * 1.5
