"""What one secondary index costs SecantusDB's insert_many: the gap between the pipeline's two
baselines (bare and indexed) isolated, on sale-row-shaped documents.

    .venv/bin/python -m bench.index_cost [--docs 60000] [--rounds 3]

Starts its own SecantusDB and inserts the same documents (string `_id`s, as ingest writes them)
in 5 000-document unordered batches into a fresh collection: with no secondary index, with one
single-field index, and with the `sales` collection's compound index; rounds interleaved, medians
quoted. To see where the server spends the difference, run py-spy (not in the lock file) on the
SecantusDB process during the indexed inserts: `py-spy record -p PID -d 10 -f raw -o out.txt`.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import Int64
from pymongo import MongoClient

from shared.mongo import SALES_INDEX
from tests.infra import MongoServer

SHAPES: dict[str, list[tuple[str, int]] | None] = {
    "no secondary index": None,
    "index on source_report_id": [("source_report_id", 1)],
    "the sales index (source_report_id, status, row, _id)": [(field, int(order)) for field, order in SALES_INDEX],
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
            for name, keys in SHAPES.items():
                coll = db["rows"]
                coll.drop()
                if keys:
                    coll.create_index(keys)
                docs = sale_rows(f"src{i}", args.docs)
                started = time.perf_counter()
                for j in range(0, len(docs), 5_000):
                    coll.insert_many(docs[j : j + 5_000], ordered=False)
                rates[name].append(args.docs / (time.perf_counter() - started))
        bare = statistics.median(rates["no secondary index"])
        for name, r in rates.items():
            med = statistics.median(r)
            print(f"{name:<55} {med:8,.0f} docs/s  {med / bare:.2f}×  (rounds: {', '.join(f'{x:,.0f}' for x in r)})")
    finally:
        server.remove()


if __name__ == "__main__":
    main()
