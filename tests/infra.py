"""Real infrastructure for tests: a SecantusDB server process and the local RabbitMQ.

SecantusDB (the embedded MongoDB wire-protocol server) is GPL, so it runs only as its own
process from its own virtual environment, never imported.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from pymongo import MongoClient
from pymongo.database import Database

from shared.mongo import COLLECTIONS
from shared.sale_chunks import rows_pipeline

ROOT = Path(__file__).resolve().parent.parent
SECANTUS_BIN = ROOT / ".venv-secantus" / "bin" / "secantusd-py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MongoServer:
    """A SecantusDB process on a free loopback port over a storage folder that outlives
    stop()/start() (outage tests restart it on the same data); remove() deletes the folder."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="saleswire-secantus-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def start(self, timeout: float = 60) -> float:
        """Starts the server and returns the seconds until it answered a ping."""
        started = time.monotonic()
        log = open(self.dir / "server.log", "ab")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            [str(SECANTUS_BIN), "--host", "127.0.0.1", "--port", str(self.port),
             "--storage-path", str(self.dir / "data"), "--log-level", "WARNING"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"SecantusDB exited: {(self.dir / 'server.log').read_text()[-2000:]}")
            try:
                with MongoClient(self.url, serverSelectionTimeoutMS=500) as client:
                    client.admin.command("ping")
                return time.monotonic() - started
            except Exception:
                time.sleep(0.1)
        raise RuntimeError(f"SecantusDB did not answer within {timeout} s")

    def stop(self) -> float:
        """SIGTERM and wait (the data stays); returns the seconds it took to exit."""
        started = time.monotonic()
        terminate(self.proc, 20)
        return time.monotonic() - started

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def ensure_rabbitmq() -> None:
    """Start the local RabbitMQ if it is installed but down (as CI machines may have it)."""
    if _port_open(5672):
        return
    if shutil.which("rabbitmq-server") is None:
        raise RuntimeError("RabbitMQ is not running at 127.0.0.1:5672 and rabbitmq-server is not installed")
    subprocess.run(["rabbitmq-server", "-detached"], check=False)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if _port_open(5672):
            time.sleep(1)
            return
        time.sleep(0.5)
    raise RuntimeError("RabbitMQ did not start within 60 s")


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def rabbit_url() -> str:
    return os.environ.get("SALESWIRE_RABBIT_URL", "amqp://guest:guest@127.0.0.1:5672/")


def delete_namespace(url: str, namespace: str) -> None:
    """Removes the exchanges and queues a test run declared, so runs leave nothing behind."""
    import asyncio

    import aio_pika

    from shared import topology
    from shared.settings import Settings

    settings = Settings(namespace=namespace, rabbit_url=url)

    async def run() -> None:
        connection = await aio_pika.connect(url)
        async with connection:
            channel = await connection.channel()
            for spec in topology.ALL_QUEUES:
                for name in (topology.queue_name(settings, spec), topology.dead_letter_queue_name(settings, spec)):
                    await channel.queue_delete(name)
            for exchange in (topology.bus_exchange(settings).name, topology.dead_letter_exchange(settings).name):
                await channel.exchange_delete(exchange)

    try:
        asyncio.run(run())
    except Exception as exc:  # cleanup must never fail a test run
        print(f"warning: could not delete broker namespace {namespace}: {exc!r}")


class ServiceProcess:
    """One service run the way production runs it: `uvicorn services.<name>.main:app`."""

    def __init__(self, name: str, module: str, port: int, env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.module = module
        self.port = port
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            [
                str(ROOT / ".venv" / "bin" / "uvicorn"),
                self.module,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-access-log",
            ],
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.tail()}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready within {timeout} s:\n{self.tail()}")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        terminate(self.proc, 15)

    def tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def terminate(proc: subprocess.Popen[bytes] | None, grace_seconds: float) -> None:
    """SIGTERM a child still running, and SIGKILL it if it has not exited within the grace time."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace_seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def settings_env(settings: object) -> dict[str, str]:
    """SALESWIRE_* variables that reproduce a Settings object in a child process."""
    from shared.settings import Settings

    assert isinstance(settings, Settings)
    env: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        raw = value.get_secret_value() if hasattr(value, "get_secret_value") else value
        env[f"SALESWIRE_{name.upper()}"] = str(raw)
    return env


def stored_rows(db: Database[Any], match: dict[str, Any]) -> list[dict[str, Any]]:
    """The sale rows `match` selects, unwound from their chunks (`shared.sale_chunks`): filters on
    the rows' own fields, so any field a row has can be asked about."""
    return list(db[COLLECTIONS.sales].aggregate(rows_pipeline({}, match)))
