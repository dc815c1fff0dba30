"""The database guarantees the services depend on (docs/scaling.md) are set in `make_client`,
win over the connection string, and work against the real (embedded) server."""

from __future__ import annotations

from pymongo import ReadPreference
from pymongo.errors import DuplicateKeyError

from shared.mongo import make_client
from shared.settings import Settings


async def test_make_client_sets_majority_writes_primary_reads_and_retries(settings: Settings) -> None:
    # Even a connection string that asks for weaker settings gets these.
    weak = settings.model_copy(
        update={"mongo_url": settings.mongo_url + "&w=1&readPreference=secondaryPreferred&retryWrites=false"}
    )
    client = make_client(weak)
    try:
        assert client.write_concern.document == {"w": "majority"}
        assert client.read_preference == ReadPreference.PRIMARY
        assert client.read_concern.level == "majority"
        assert client.options.retry_writes is True
        assert client.options.retry_reads is True
        db = client[settings.mongo_db]
        assert db.write_concern.document == {"w": "majority"}
        # The server accepts them: a write acknowledged by a majority, read back at majority.
        result = await db.probe.insert_one({"_id": "x", "n": 1})
        assert result.acknowledged
        assert await db.probe.find_one({"_id": "x"}) == {"_id": "x", "n": 1}
        # Idempotent writes rest on unique keys, not on transactions: a repeat is refused as such.
        try:
            await db.probe.insert_one({"_id": "x", "n": 2})
        except DuplicateKeyError:
            pass
        else:
            raise AssertionError("a second insert of the same _id was accepted")
        assert await db.probe.count_documents({}) == 1
        await client.drop_database(settings.mongo_db)
    finally:
        await client.close()
