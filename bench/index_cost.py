"""What the `sales` layout costs SecantusDB's insert_many: one document per row, with and without
a secondary index, against the rows packed into chunks (`shared.sale_chunks`), the layout in use.

    .venv/bin/python -m bench.index_cost [--docs 60000] [--rounds 3]

Starts its own SecantusDB and inserts the same sale-row-shaped documents (string `_id`s, as ingest
writes them) into a fresh collection, 5 000 rows per `insert_many`: one document per row with no
secondary index (the bare baseline), one per row with one single-field index, one per row with the
index the row layout had, and packed `CHUNK_ROWS` to a chunk with the `sales` index. Rounds
interleaved, medians quoted, in rows per second. To see where the server spends the difference,
run py-spy (not in the lock file) on the SecantusDB process during the indexed inserts:
`py-spy record -p PID -d 10 -f raw -o out.txt`.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import Int64
from pymongo import MongoClient

from shared.sale_chunks import CHUNK_ROWS, SALES_INDEX, ChunkPacker
from tests.infra import MongoServer

# (secondary index, rows packed into chunks?)
SHAPES: dict[str, tuple[list[tuple[str, int]] | None, bool]] = {
    "a document per row, no secondary index": (None, False),
    "a document per row, index on source_report_id": ([("source_report_id", 1)], False),
    "a document per row, the row layout's index": (
        [("source_report_id", 1), ("status", 1), ("row", 1), ("_id", 1)],
        False,
    ),
    f"chunks of {CHUNK_ROWS} rows, the sales index": ([(field, int(order)) for field, order in SALES_INDEX], True),
}


def sale_rows(source_report_id: str, n: int) -> list[dict[str, Any]]:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    return [
        {
            "_id": f"{source_report_id}:{row}",
            "report_id": "r" * 24,
            "source_report_id": source_report_id,
            "channel_id": Int64(-1001234567890),
            "creator_id": 1,
            "source": "excel",
            "row": row,
            "user_id": Int64(100_000 + row),
            "customer_key": None,
            "name": f"name {row}",
            "product": "Course",
            "username": f"user{row}",
            "photo_url": None,
            "phone_number": None,
            "invite_link": None,
            "is_premium": row % 3 == 0,
            "birthdate": None,
            "status": ("lead", "sale", "funnel")[row % 3],
            "purchase_amount": 300.0,
            "sub_date": start + timedelta(minutes=row),
            "unsub_date": None,
            "action_date": None,
            "action_period_ms": None,
            "extra": None,
        }
        for row in range(2, n + 2)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=60_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    server = MongoServer()
    server.start()
    rates: dict[str, list[float]] = {name: [] for name in SHAPES}
    try:
        db = MongoClient(server.url)["bench_index_cost"]
        for i in range(args.rounds):
            for name, (keys, chunked) in SHAPES.items():
                coll = db["rows"]
                coll.drop()
                if keys:
                    coll.create_index(keys)
                rows = sale_rows(f"src{i}", args.docs)
                packer = ChunkPacker()
                started = time.perf_counter()
                for j in range(0, len(rows), 5_000):
                    batch = rows[j : j + 5_000]
                    if docs := packer.add(batch) if chunked else batch:
                        coll.insert_many(docs, ordered=False)
                if rest := packer.flush():
                    coll.insert_many(rest, ordered=False)
                rates[name].append(args.docs / (time.perf_counter() - started))
        bare = statistics.median(rates["a document per row, no secondary index"])
        for name, r in rates.items():
            med = statistics.median(r)
            print(f"{name:<50} {med:8,.0f} rows/s  {med / bare:.2f}×  (rounds: {', '.join(f'{x:,.0f}' for x in r)})")
    finally:
        server.remove()


if __name__ == "__main__":
    main()
