"""Infrastructure the fault tests control themselves: a SecantusDB process on a fixed port that
can be stopped and started again over the same storage, a second RabbitMQ node of our own (the
shared one at :5672 is never touched), and a whole Saleswire stack wired to either.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
from pymongo import MongoClient

from shared.settings import Settings
from tests.e2e.conftest import Stack
from tests.infra import MongoServer, ServiceProcess, delete_namespace, free_port, settings_env

LONG = os.environ.get("SALESWIRE_LONG_TESTS") == "1"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CHANNEL = -1001234567890
SERVICE_MODULES = {
    "gateway": "services.gateway.main:app",
    "ingest": "services.ingest.main:app",
    "analytics": "services.analytics.main:app",
}


def port_open(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


# SecantusDB on a fixed port whose data survives stop()/start(): the shared test server.
SecantusProcess = MongoServer


class RabbitNode:
    """A second RabbitMQ node of our own on a free port, with its own config, data and logs.

    Debian's `rabbitmq-server` wrapper re-runs itself as the `rabbitmq` user, so the folder is
    handed to that user; the system-wide rabbitmq.conf pins the listener to 5672, so the node gets
    its own config file with its own listener.
    """

    def __init__(self) -> None:
        self.port = free_port()
        while self.port + 20000 > 65535 or port_open(self.port + 20000):
            self.port = free_port()
        self.name = f"sw-test-{self.port}@localhost"
        self.dir = Path(tempfile.mkdtemp(prefix="sw-rmq-"))
        (self.dir / "plugins").write_text("[].\n")
        (self.dir / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\nloopback_users = none\n")
        self.dir.chmod(0o755)
        subprocess.run(["chown", "-R", "rabbitmq:rabbitmq", str(self.dir)], check=True)

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def start(self, timeout: float = 90) -> float:
        started = time.monotonic()
        env = {
            **os.environ,
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.port + 20000),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "plugins"),
        }
        subprocess.run(["rabbitmq-server", "-detached"], env=env, check=True, capture_output=True)
        while time.monotonic() - started < timeout:
            if port_open(self.port):
                return time.monotonic() - started
            time.sleep(0.2)
        raise RuntimeError(f"RabbitMQ node {self.name} did not listen within {timeout} s: {self.log_tail()}")

    def stop(self) -> float:
        started = time.monotonic()
        subprocess.run(["rabbitmqctl", "-n", self.name, "stop"], check=False, capture_output=True, timeout=60)
        while port_open(self.port) and time.monotonic() - started < 60:
            time.sleep(0.1)
        return time.monotonic() - started

    def log_tail(self) -> str:
        try:
            return (self.dir / "log" / f"{self.name}.log").read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def remove(self) -> None:
        if port_open(self.port):
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextmanager
def running_stack(
    mongo_url: str,
    rabbit_url: str,
    *,
    connectors: bool = False,
    extra_env: dict[str, str] | None = None,
    **overrides: Any,
) -> Iterator[Stack]:
    """Gateway, ingest and analytics (and connectors when asked) as their own uvicorn processes, on
    a fresh database and broker namespace; everything is removed afterwards. `extra_env` reaches
    every process (e.g. `SALESWIRE_CONNECTORS_*` tuning)."""
    tag = uuid.uuid4().hex[:10]
    options: dict[str, Any] = {
        "mongo_url": mongo_url,
        "mongo_db": f"rel_{tag}",
        "rabbit_url": rabbit_url,
        "namespace": f"rel.{tag}",
        "max_upload_bytes": 3 * 1024 * 1024,
        "validation_wait_seconds": 120,
        "delivery_limit": 5,
        # a good neighbour on a shared 2-core machine: tighter caps than production
        "parse_memory_bytes": 2 * 1024**3,
        "parse_timeout_seconds": 60,
        **overrides,
    }
    settings = Settings(**options)
    env = {**settings_env(settings), **(extra_env or {})}
    log_dir = Path(tempfile.mkdtemp(prefix="saleswire-rel-"))
    modules = {**SERVICE_MODULES, **({"connectors": "services.connectors.main:app"} if connectors else {})}
    processes = {name: ServiceProcess(name, module, free_port(), env, log_dir) for name, module in modules.items()}
    try:
        for proc in processes.values():
            proc.start()
        for proc in processes.values():
            proc.wait_ready(120)
        yield Stack(settings, processes, env)
    finally:
        for proc in processes.values():
            proc.stop()
        with suppress(Exception):
            delete_namespace(rabbit_url, settings.namespace)
        with suppress(Exception), MongoClient(mongo_url, serverSelectionTimeoutMS=3000) as client:
            client.drop_database(settings.mongo_db)
        shutil.rmtree(log_dir, ignore_errors=True)


def upload(
    stack: Stack, user: str, content: bytes, *, budget: str = "1000", name: str = "rel", timeout: float = 180
) -> httpx.Response:
    return httpx.post(
        f"{stack.gateway_url}/sales/create",
        params={"channel_id": CHANNEL, "name": name, "budget": budget},
        files={"file": ("campaign.xlsx", content, XLSX)},
        headers=stack.headers(user),
        timeout=timeout,
    )


def wait_report(stack: Stack, user: str, report_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            r = httpx.post(
                f"{stack.gateway_url}/sales/analytic/report",
                json={"report_id": report_id},
                headers=stack.headers(user),
                timeout=10,
            )
        except httpx.HTTPError:
            time.sleep(0.5)
            continue
        if r.status_code == 200:
            body = r.json()
            if body["status"] in ("success", "failed"):
                return body
        time.sleep(0.25)
    return body


def service_pid(stack: Stack, name: str) -> int:
    proc = stack.processes[name].proc
    assert proc is not None
    return proc.pid


def ready_status(url: str) -> int:
    try:
        return httpx.get(f"{url}/ready", timeout=3).status_code
    except httpx.HTTPError:
        return 0


def dead_letter_depths(stack: Stack) -> dict[str, int]:
    """Dead-letter queues of the stack's namespace that hold messages (empty dict: none)."""
    import asyncio

    import aio_pika

    from shared import topology

    names = [topology.dead_letter_queue_name(stack.settings, spec) for spec in topology.ALL_QUEUES]

    async def run() -> dict[str, int]:
        connection = await aio_pika.connect(stack.settings.rabbit_url)
        async with connection:
            channel = await connection.channel()
            depths = {}
            for name in names:
                queue = await channel.declare_queue(name, passive=True)
                depths[name] = int(queue.declaration_result.message_count or 0)
            return {k: v for k, v in depths.items() if v}

    return asyncio.run(run())
