"""The three sandbox emulators served by `python -m deploy.sandbox` on real loopback ports, once
per session; each test resets the data it needs through the control endpoints."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.infra import ROOT, free_port


@dataclass(frozen=True)
class Sandbox:
    sweetclub: str
    eduzz: str
    ofd: str

    def url(self, kind: str) -> str:
        return str(getattr(self, kind))


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    ports = {name: free_port() for name in ("sweetclub", "eduzz", "ofd")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "deploy.sandbox",
            "--size",
            "200",
            *(arg for name, port in ports.items() for arg in (f"--{name}", str(port))),
        ],
        cwd=ROOT,
    )
    box = Sandbox(**{name: f"http://127.0.0.1:{port}" for name, port in ports.items()})
    deadline = time.monotonic() + 30
    for name in ports:
        while True:
            try:
                httpx.get(f"{box.url(name)}/_sandbox/stats", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    proc.kill()
                    raise RuntimeError(f"sandbox {name} did not start") from None
                time.sleep(0.1)
    yield box
    proc.terminate()
    proc.wait(10)


def control(base_url: str, path: str, body: object = None, method: str = "POST") -> object:
    response = httpx.request(method, f"{base_url}/_sandbox/{path}", json=body, timeout=30)
    response.raise_for_status()
    return response.json()
