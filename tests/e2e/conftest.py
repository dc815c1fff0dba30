"""The whole system for end-to-end tests: gateway, ingest and analytics (and connectors when
present) each as its own `uvicorn` process, on the real RabbitMQ and a real SecantusDB."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from shared.settings import Settings
from tests.infra import ROOT, MongoServer, ServiceProcess, delete_namespace, free_port, settings_env

SERVICES = {
    "gateway": "services.gateway.main:app",
    "ingest": "services.ingest.main:app",
    "analytics": "services.analytics.main:app",
}
if (ROOT / "services" / "connectors" / "main.py").exists():
    SERVICES["connectors"] = "services.connectors.main:app"


@dataclass
class Stack:
    settings: Settings
    processes: dict[str, ServiceProcess]
    env: dict[str, str]
    _tokens: dict[str, str] = field(default_factory=dict)

    @property
    def gateway_url(self) -> str:
        return self.processes["gateway"].url

    def token(self, name: str) -> str:
        """A bearer token for user `name`, issued by the documented CLI."""
        if name not in self._tokens:
            out = subprocess.run(
                [sys.executable, "-m", "services.gateway.tokens", "create", name],
                env={**self.env},
                capture_output=True,
                text=True,
                check=False,
                cwd=ROOT,
            )
            assert out.returncode == 0, f"tokens create {name} exited {out.returncode}: {out.stderr[-2000:]}"
            self._tokens[name] = out.stdout.strip().splitlines()[-1]
        return self._tokens[name]

    def headers(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(name)}"}

    def db(self) -> Any:
        client: MongoClient[dict[str, Any]] = MongoClient(self.settings.mongo_url, tz_aware=True)
        return client[self.settings.mongo_db]

    def restart(self, name: str, *, kill: bool = False) -> None:
        proc = self.processes[name]
        proc.kill() if kill else proc.stop()
        proc.start()
        proc.wait_ready()


@contextlib.contextmanager
def running_stack(
    mongo_server: MongoServer,
    rabbitmq: str,
    *,
    copies: tuple[str, ...] = ("",),
    log_prefix: str = "saleswire-e2e-",
    ready_seconds: float = 60,
) -> Iterator[Stack]:
    """Every service as `len(copies)` processes (named service + suffix) on a namespace and a
    database of their own, all ready; stopped and cleaned up afterwards."""
    tag = uuid.uuid4().hex[:10]
    settings = Settings(
        mongo_url=mongo_server.url,
        mongo_db=f"e2e_{tag}",
        rabbit_url=rabbitmq,
        namespace=f"e2e.{tag}",
        max_upload_bytes=3 * 1024 * 1024,
        validation_wait_seconds=120,
        delivery_limit=4,
    )
    env = settings_env(settings)
    env["SALESWIRE_CONNECTORS_PORT"] = str(free_port())
    log_dir = Path(tempfile.mkdtemp(prefix=log_prefix))
    processes = {
        f"{name}{suffix}": ServiceProcess(f"{name}{suffix}", module, free_port(), env, log_dir)
        for name, module in SERVICES.items()
        for suffix in copies
    }
    try:
        for proc in processes.values():
            proc.start()
        for proc in processes.values():
            proc.wait_ready(ready_seconds)
        yield Stack(settings, processes, env)
    finally:
        for proc in processes.values():
            proc.stop()
        delete_namespace(rabbitmq, settings.namespace)
        with MongoClient(settings.mongo_url) as client:
            client.drop_database(settings.mongo_db)


@pytest.fixture(scope="session")
def stack(mongo_server: MongoServer, rabbitmq: str) -> Iterator[Stack]:
    with running_stack(mongo_server, rabbitmq) as running:
        yield running
