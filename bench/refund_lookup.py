"""How long a SweetClub refund takes to find and mark its sale row as the sales collection grows:
the old lookup (match on `extra.connection_id` and `extra.external_id`, which no index covers)
against the one `apply_refund` does now (`_id $in`, one id per source report of the connection).

    .venv/bin/python -m bench.refund_lookup [--rows 200000] [--sources 4] [--lookups 5]

Starts its own SecantusDB, fills `sales` (with its real index) with sale-row-shaped documents
spread over `--sources` connector source reports, then times find + update_many for each lookup,
interleaved; medians quoted.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from pymongo import MongoClient
from pymongo.collection import Collection

from bench.index_cost import SHAPES, sale_rows
from tests.infra import MongoServer

CONNECTION = "conn-refunds"


def refund(sales: Collection[dict[str, Any]], query: dict[str, Any]) -> float:
    started = time.perf_counter()
    ids = [r["_id"] for r in sales.find(query, projection={"_id": 1})]
    assert ids, f"nothing matched {query}"
    sales.update_many({"_id": {"$in": ids}}, {"$set": {"status": "refunded"}})
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--sources", type=int, default=4)
    parser.add_argument("--lookups", type=int, default=5)
    args = parser.parse_args()
    server = MongoServer()
    server.start()
    try:
        sales: Collection[dict[str, Any]] = MongoClient(server.url)["bench_refund_lookup"]["sales"]
        keys = SHAPES["the sales index (source_report_id, status, sub_date)"]
        assert keys is not None
        sales.create_index(keys)
        per_source = args.rows // args.sources
        sources = [f"src{s}" for s in range(args.sources)]
        for source in sources:
            rows = sale_rows(source, per_source)
            for r in rows:
                r["extra"] = {"connection_id": CONNECTION, "external_id": str(r["row"])}
            for j in range(0, len(rows), 5_000):
                sales.insert_many(rows[j : j + 5_000], ordered=False)
        timings: dict[str, list[float]] = {"by extra fields (before)": [], "by _id (apply_refund)": []}
        for k in range(args.lookups):
            sale_id = str(2 + (k * 7_919) % per_source)
            before = {"extra.connection_id": CONNECTION, "extra.external_id": sale_id}
            now = {"_id": {"$in": [f"{source}:{sale_id}" for source in sources]}}
            timings["by extra fields (before)"].append(refund(sales, before))
            timings["by _id (apply_refund)"].append(refund(sales, now))
        print(f"{args.rows:,} sale rows over {args.sources} source reports, {args.lookups} refunds each")
        base = statistics.median(timings["by _id (apply_refund)"])
        for name, t in timings.items():
            med = statistics.median(t)
            print(f"{name:<28} median {med * 1000:9.1f} ms  {med / base:8.0f}× the _id lookup")
    finally:
        server.remove()


if __name__ == "__main__":
    main()
