"""Each emulator in process (httpx over its ASGI app), and one on a real loopback socket for the
faults that only a socket can show (a dropped connection, a lost answer)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from deploy.sandbox import eduzz, ofd, sweetclub
from tests.infra import free_port

SWEETCLUB_LOGIN = {"username": "testapi@testapi.com", "password": "testapi@testapi.com"}
EDUZZ_AUTH = {"Authorization": "Bearer sandbox-eduzz-token"}
OFD_AUTH = {"X-Yandex-Key": "sandbox-yandex-key", "X-OFD-Key": "sandbox-ofd-key"}


def client_of(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox", timeout=10)


async def sweetclub_token(client: httpx.AsyncClient) -> dict[str, str]:
    token = (await client.post("/api/login", data=SWEETCLUB_LOGIN)).json()["api_token"]
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def sc() -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(sweetclub.create_app(size=300, seed=5)) as client:
        client.headers.update(await sweetclub_token(client))
        yield client


@pytest.fixture
async def ez() -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(eduzz.create_app(size=300, seed=5)) as client:
        client.headers.update(EDUZZ_AUTH)
        yield client


@pytest.fixture
async def yo() -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(ofd.create_app(size=600, seed=5)) as client:
        client.headers.update(OFD_AUTH)
        yield client


@pytest.fixture
def sweetclub_server() -> Iterator[str]:
    """The SweetClub emulator on a loopback port, served by uvicorn in a thread of this test."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(sweetclub.create_app(size=50, seed=5), host="127.0.0.1", port=port, log_level="critical")
    )
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
