"""A three-node RabbitMQ cluster of the test's own, made by `scripts/rabbitmq-cluster.sh` (the
script users run), on free loopback ports, under a node-name prefix and a folder of its own, so
that parallel runs and a user's own cluster do not meet. The shared node at :5672 is never touched.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from tests.infra import ROOT, free_port
from tests.reliability.harness import port_open

SCRIPT = ROOT / "scripts" / "rabbitmq-cluster.sh"


def _cluster_ports() -> list[int]:
    ports: list[int] = []
    while len(ports) < 3:
        port = free_port()
        if port != 5672 and port + 20000 <= 65535 and not port_open(port + 20000) and port not in ports:
            ports.append(port)
    return ports


def _data_parent() -> str | None:
    """tmpfs when the machine has one: the nodes' Raft logs and Mnesia then cost no fsync on a disk
    other engineers' runs keep busy. A `kill -9` of a node loses exactly what it would lose on a
    disk (only a machine crash reaches past the page cache), so nothing the test checks changes."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


class RabbitCluster:
    def __init__(self) -> None:
        self.prefix = f"sw-t{uuid.uuid4().hex[:6]}"
        self.ports = _cluster_ports()
        self.dir = Path(tempfile.mkdtemp(prefix="sw-rmq-cluster-", dir=_data_parent()))
        self.env = {
            **os.environ,
            "SALESWIRE_CLUSTER_PREFIX": self.prefix,
            "SALESWIRE_CLUSTER_PORTS": ",".join(map(str, self.ports)),
            "SALESWIRE_CLUSTER_DIR": str(self.dir),
        }

    def script(self, *args: str, timeout: float = 240) -> str:
        done = subprocess.run(
            ["bash", str(SCRIPT), *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"rabbitmq-cluster.sh {' '.join(args)} failed: {done.stdout[-2000:]} {done.stderr[-3000:]}"
            )
        return done.stdout

    def start(self) -> str:
        return self.script("start")

    @property
    def urls(self) -> list[str]:
        return self.script("urls").strip().split(",")

    def node_name(self, n: int) -> str:
        return f"{self.prefix}-{n}@localhost"

    def node_of_name(self, name: str) -> int:
        return int(name.split("@")[0].rsplit("-", 1)[1])

    def running(self, n: int) -> bool:
        return port_open(self.ports[n - 1])

    def pid(self, n: int) -> int:
        return int(self.script("node-pid", str(n)).strip())

    def kill(self, n: int) -> float:
        """SIGKILL node n's Erlang VM (beam.smp); returns the monotonic time of the kill."""
        pid = self.pid(n)
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        assert comm == "beam.smp", f"pid {pid} of node {n} is {comm!r}, not the Erlang VM"
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        while self.running(n):
            time.sleep(0.01)
        return killed_at

    def start_node(self, n: int) -> float:
        started = time.monotonic()
        self.script("node-start", str(n))
        return time.monotonic() - started

    def ctl(self, *args: str, node: int | None = None, timeout: float = 60) -> str:
        n = node or next(i for i in (1, 2, 3) if self.running(i))
        done = subprocess.run(
            ["rabbitmqctl", "-q", "-n", self.node_name(n), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
        return done.stdout

    def running_nodes(self) -> list[str]:
        out = self.ctl("eval", "lists:sort(rabbit_nodes:all_running()).")
        return sorted(part.strip(" '[]\n") for part in out.split(",") if part.strip(" '[]\n"))

    def queues(self, namespace: str) -> list[dict[str, Any]]:
        """Every queue of the namespace: name, type, leader, members, online, message counts."""
        out = self.ctl(
            "list_queues",
            "name",
            "type",
            "leader",
            "members",
            "online",
            "messages_ready",
            "messages_unacknowledged",
            "--formatter",
            "json",
        )
        return [q for q in json.loads(out) if str(q["name"]).startswith(f"{namespace}.")]

    def remove(self) -> None:
        """Ends the three nodes and deletes their data. SIGTERM (the VM stops gracefully), not
        `rabbitmqctl stop`: the data goes anyway, and three CLI VMs cost seconds here."""
        pids = []
        for n in (1, 2, 3):
            try:
                pid = self.pid(n)
                if Path(f"/proc/{pid}/comm").read_text().strip() == "beam.smp":
                    os.kill(pid, signal.SIGTERM)
                    pids.append(pid)
            except (OSError, RuntimeError, ValueError):
                pass
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in pids):
            time.sleep(0.1)
        for pid in pids:  # a node that hung in its stop is ours to end
            try:
                if Path(f"/proc/{pid}/comm").read_text().strip() == "beam.smp":
                    os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)
