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

from pymongo import MongoClient

ROOT = Path(__file__).resolve().parent.parent
SECANTUS_BIN = ROOT / ".venv-secantus" / "bin" / "secantusd-py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MongoServer:
    """A SecantusDB process on a free loopback port with a throw-away storage folder."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="saleswire-secantus-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def start(self) -> None:
        log = open(self.dir / "server.log", "wb")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            [str(SECANTUS_BIN), "--host", "127.0.0.1", "--port", str(self.port),
             "--storage-path", str(self.dir / "data"), "--log-level", "WARNING"],
            stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"SecantusDB exited: {(self.dir / 'server.log').read_text()[-2000:]}")
            try:
                with MongoClient(self.url, serverSelectionTimeoutMS=500) as client:
                    client.admin.command("ping")
                return
            except Exception:
                time.sleep(0.2)
        raise RuntimeError("SecantusDB did not answer within 60 s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
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
