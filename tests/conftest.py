"""Session-wide real infrastructure: one SecantusDB process, the local RabbitMQ, and a broker
namespace unique to this run so that a running demo never sees test messages."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import Document, ensure_indexes
from shared.settings import Settings
from tests.infra import MongoServer, delete_namespace, ensure_rabbitmq, rabbit_url


@pytest.fixture(scope="session")
def mongo_server() -> Iterator[MongoServer]:
    server = MongoServer()
    server.start()
    yield server
    server.remove()


@pytest.fixture(scope="session")
def rabbitmq() -> str:
    ensure_rabbitmq()
    return rabbit_url()


@pytest.fixture
def settings(mongo_server: MongoServer, rabbitmq: str) -> Iterator[Settings]:
    """Settings for one test: its own database and its own broker namespace."""
    tag = uuid.uuid4().hex[:10]
    yield Settings(
        mongo_url=mongo_server.url,
        mongo_db=f"test_{tag}",
        rabbit_url=rabbitmq,
        namespace=f"test.{tag}",
        delivery_limit=3,
    )
    delete_namespace(rabbitmq, f"test.{tag}")


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[AsyncDatabase[Document]]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(settings.mongo_url, tz_aware=True)
    database = client[settings.mongo_db]
    await ensure_indexes(database)
    yield database
    await client.drop_database(settings.mongo_db)
    await client.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The browser tests run last. Playwright's sync API drives its own event loop in this thread
    and leaves it closed, which breaks the session-wide asyncio loop that every async test after it
    shares (pytest-asyncio, loop scope "session"): every async test after them failed in CI."""
    items.sort(key=lambda item: "tests/browser/" in str(item.path).replace("\\", "/"))
