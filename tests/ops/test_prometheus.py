"""A real Prometheus (Debian's `prometheus` package; `scripts/ensure-prometheus.sh` installs it)
scrapes a running Saleswire service and the local RabbitMQ exporter, the way deploy/prometheus.yml
does in docker-compose; the exposition passes `promtool check metrics`, the scraped series can be
queried back, and every expression of the Grafana dashboard is valid PromQL on real data."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # no types-PyYAML in the lock
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from shared import deadletters, topology
from shared.broker import REASON_HEADER, declare_topology, make_broker
from shared.settings import Settings
from tests.infra import ROOT, free_port
from tests.ops.namespace import drop_namespace

DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "saleswire.json"
RABBITMQ_EXPORTER = "127.0.0.1:15692"
# Service modules in order of preference; the first that exists is scraped.
SERVICE_MODULES = ("ingest", "analytics", "connectors", "gateway")
# A queue each message-driven service consumes (an invalid message there becomes a dead letter).
CONSUMED_QUEUE = {
    "ingest": topology.SALE_RECORDED,
    "analytics": topology.SALES_INGESTED,
    "connectors": topology.SYNC_CONNECTION,
}


@pytest.fixture(autouse=True)
async def _drop_namespace(settings: Settings) -> AsyncIterator[None]:
    yield
    await drop_namespace(settings)


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"`{name}` is not installed: run scripts/ensure-prometheus.sh (Debian package prometheus)")
    return path


def _get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback test URL
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 45.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{proc.args!r} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if _get(url, timeout=1.0)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{url} did not answer 200 within {timeout} s:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class RunningService:
    name: str
    port: int

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture
def service(settings: Settings, tmp_path: Path) -> Iterator[RunningService]:
    """The first Saleswire service that exists, run by uvicorn with this test's settings."""
    name = next((n for n in SERVICE_MODULES if (ROOT / "services" / n / "main.py").exists()), None)
    module = f"services.{name}.main:app" if name else "tests.ops.metrics_app:app"
    port = free_port()
    env = {
        **os.environ,
        "SALESWIRE_RABBIT_URL": settings.rabbit_url,
        "SALESWIRE_MONGO_URL": settings.mongo_url,
        "SALESWIRE_MONGO_DB": settings.mongo_db,
        "SALESWIRE_NAMESPACE": settings.namespace,
        "SALESWIRE_DELIVERY_LIMIT": str(settings.delivery_limit),
        "SALESWIRE_LOG_LEVEL": "WARNING",
    }
    log = tmp_path / "service.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", module, "--host", "127.0.0.1", "--port", str(port), "--no-access-log"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_http(f"http://127.0.0.1:{port}/health", proc, log)
        yield RunningService(name or "stand-in", port)
    finally:
        _stop(proc)


class Prometheus:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def query(self, promql: str) -> list[dict[str, Any]]:
        status, body = _get(f"{self.base}/api/v1/query?{urllib.parse.urlencode({'query': promql})}")
        answer = json.loads(body)
        assert status == 200 and answer["status"] == "success", f"{promql}: {answer}"
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def wait_for(self, promql: str, timeout: float = 20.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(promql)
            if result:
                return result
            if time.monotonic() > deadline:
                seen = self.query(
                    '{__name__=~"faststream_received_messages_total|saleswire_messages_dead_lettered_total"}'
                )
                raise AssertionError(f"no result for {promql} within {timeout} s; {seen}")
            time.sleep(0.25)


def scrape_config(service: RunningService) -> dict[str, Any]:
    """deploy/prometheus.yml with the compose host names replaced by this test's loopback targets."""
    config: dict[str, Any] = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    for job in config["scrape_configs"]:
        if job["job_name"] == "saleswire":
            job["static_configs"] = [{"targets": [service.target], "labels": {"service": service.name}}]
        elif job["job_name"].startswith("rabbitmq"):
            for static in job["static_configs"]:
                static["targets"] = [RABBITMQ_EXPORTER]
    config["scrape_configs"] = [j for j in config["scrape_configs"] if j["job_name"] != "prometheus"]
    return config


@pytest.fixture
def prometheus(service: RunningService, tmp_path: Path) -> Iterator[Prometheus]:
    binary = _binary("prometheus")
    if _get_ok(f"http://{RABBITMQ_EXPORTER}/metrics") is False:
        pytest.fail(
            "RabbitMQ's exporter is not on :15692: run scripts/ensure-prometheus.sh (enables rabbitmq_prometheus)"
        )
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump(scrape_config(service)))
    check = subprocess.run(
        [_binary("promtool"), "check", "config", str(config)], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    port = free_port()
    log = tmp_path / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_http(f"http://127.0.0.1:{port}/-/ready", proc, log, timeout=30)
        yield Prometheus(port)
    finally:
        _stop(proc)


def _get_ok(url: str) -> bool:
    try:
        return _get(url, timeout=2.0)[0] == 200
    except OSError:
        return False


def dashboard_expressions() -> list[tuple[str, str]]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [(p["title"], t["expr"]) for p in panels for t in p.get("targets", [])]


def as_promql(expr: str) -> str:
    """A dashboard expression with Grafana's variables filled in the way Grafana would."""
    return expr.replace("$__rate_interval", "1m").replace('"$service"', '".*"')


async def test_prometheus_scrapes_service_and_rabbitmq_and_dashboard_queries_run(
    settings: Settings, service: RunningService, prometheus: Prometheus
) -> None:
    # The exposition itself is clean by Prometheus' own linter.
    status, body = _get(f"http://{service.target}/metrics")
    assert status == 200
    lint = await asyncio.create_subprocess_exec(
        _binary("promtool"),
        "check",
        "metrics",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    lint_out, _ = await lint.communicate(body)
    assert lint.returncode == 0, lint_out.decode()

    # The compose healthcheck of the services, run as Docker would run it, passes against a ready service.
    healthcheck = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["ingest"]["healthcheck"]
    assert healthcheck["test"][:3] == ["CMD", "python", "-c"]
    probe = await asyncio.create_subprocess_exec(
        sys.executable, "-c", healthcheck["test"][3], env={**os.environ, "SERVICE_PORT": str(service.port)}
    )
    assert await asyncio.wait_for(probe.wait(), 15) == 0

    # A dead letter in this namespace, so the broker has a non-empty DLQ to report. A real consumer
    # service makes it itself from an invalid message; otherwise it is put on the DLX directly.
    consumed = CONSUMED_QUEUE.get(service.name)
    spec = consumed or topology.SYNC_CONNECTION
    broker = make_broker(settings, registry=CollectorRegistry())
    await broker.connect()
    await declare_topology(broker, settings)
    await broker.publish(
        b'{"not": "a valid message"}',
        exchange=topology.bus_exchange(settings) if consumed else topology.dead_letter_exchange(settings),
        routing_key=spec.routing_key,
        headers={} if consumed else {REASON_HEADER: "PermanentError: ops test"},
        message_id="ops-1",
        persist=True,
    )
    await broker.stop()
    dlq = topology.dead_letter_queue_name(settings, spec)
    deadline = time.monotonic() + 15
    while (await deadletters.dlq_depths(settings))[dlq] != 1:
        assert time.monotonic() < deadline, f"{dlq} never got the dead letter"
        await asyncio.sleep(0.1)
    (letter,) = await deadletters.list_dead_letters(settings, queue=dlq)
    if consumed:
        assert letter.reason.startswith("ValidationError"), letter.reason

    # The service is scraped and everything it exposes arrives in Prometheus.
    up = prometheus.wait_for(f'up{{job="saleswire",service="{service.name}"}} == 1')
    assert up[0]["metric"]["instance"] == service.target
    exposed = {sample.name for family in text_string_to_metric_families(body.decode()) for sample in family.samples}
    assert exposed, "the service exposes no samples at all"
    deadline = time.monotonic() + 20
    while True:
        stored = {
            row["metric"]["__name__"]
            for row in prometheus.query(f'count by (__name__) ({{job="saleswire",service="{service.name}"}})')
        }
        if exposed <= stored or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.25)
    assert exposed <= stored, f"exposed but not stored: {sorted(exposed - stored)[:20]}"
    saleswire_series = {name for name in stored if name.startswith("saleswire_")}
    assert saleswire_series, "no saleswire_* series scraped"
    if consumed:
        # The service's own counters saw the message and the dead-lettering.
        # FastStream names a RabbitMQ handler after the exchange and routing key it is bound with.
        handler = f"{topology.bus_exchange(settings).name}.{consumed.routing_key}"
        received = prometheus.wait_for(f'faststream_received_messages_total{{job="saleswire",handler="{handler}"}}')
        assert float(received[0]["value"][1]) >= 1
        dead = prometheus.wait_for(f'saleswire_messages_dead_lettered_total{{queue="{dlq}"}} >= 1')
        assert dead[0]["metric"]["service"] == service.name

    # RabbitMQ: the per-queue job gives every queue and DLQ of the namespace, with the dead letter counted.
    rows = prometheus.wait_for(f'rabbitmq_detailed_queue_messages{{queue="{dlq}"}} == 1')
    assert rows[0]["metric"]["job"] == "rabbitmq-queues"
    prometheus.wait_for('up{job="rabbitmq"} == 1')
    namespace_regex = settings.namespace.replace(".", "[.]")
    in_namespace = f'rabbitmq_detailed_queue_messages_ready{{queue=~"{namespace_regex}[.].*"}}'
    expected = {topology.queue_name(settings, s) for s in topology.ALL_QUEUES} | {
        topology.dead_letter_queue_name(settings, s) for s in topology.ALL_QUEUES
    }
    deadline = time.monotonic() + 15
    while True:
        namespace_queues = {row["metric"]["queue"] for row in prometheus.query(in_namespace)}
        if namespace_queues == expected or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.25)
    assert namespace_queues == expected

    # Every dashboard expression is valid PromQL against this data; the broker DLQ panel shows the letter.
    for _title, expr in dashboard_expressions():
        prometheus.query(as_promql(expr))
    (broker_dlq_expr,) = [e for t, e in dashboard_expressions() if t == "DLQ depth by queue (broker)"]
    by_queue = {row["metric"]["queue"]: float(row["value"][1]) for row in prometheus.query(as_promql(broker_dlq_expr))}
    assert by_queue[dlq] == 1.0
    (up_expr,) = [e for t, e in dashboard_expressions() if t == "Services up"]
    assert [float(r["value"][1]) for r in prometheus.query(as_promql(up_expr))] == [1.0]


def test_promtool_accepts_deploy_prometheus_config() -> None:
    check = subprocess.run(
        [_binary("promtool"), "check", "config", str(DEPLOY / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS" in check.stdout + check.stderr
