"""The links read (`GET /sales/analytic/report/{id}/links`) of a report with 10 000 distinct links,
through the real gateway (a uvicorn process on SecantusDB and the local RabbitMQ), against the
plain report read (`POST /sales/analytic/report`) in the same run.

    .venv/bin/python -m bench.links_read [--links 10000] [--reads 50] [--rounds 3]

The links table is stored as analytics stores it (`report_links`: the entries, Decimal128 money,
plus the answer's bytes `shared.links_answer` makes, in the same document), for a report whose figures say 1 000 000
rows: the read touches that one document only, so the rows themselves are not written. A second
report's table is stored without the kept bytes, to show what the gateway's fallback (read the
entries, encode them) costs, and a third's with the answer's bytes also in a document of their own
(`LINKS_ANSWER_COLLECTION`): SecantusDB reads a whole document whatever the projection, so that
layout is what a fast read needs. Sequential keep-alive reads, interleaved by round; medians printed.
"""

from __future__ import annotations

import argparse
import random
import statistics
import string
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from bson import Binary, Decimal128, Int64
from pymongo import MongoClient

from shared.links_answer import LINKS_ANSWER_COLLECTION, LINKS_JSON_FIELD, answer_document, encode_links
from shared.mongo import COLLECTIONS
from shared.reports import NUMBER_METRIC_NAMES
from shared.settings import Settings
from tests.infra import (
    MongoServer,
    ServiceProcess,
    delete_namespace,
    ensure_rabbitmq,
    free_port,
    rabbit_url,
    settings_env,
)

ROWS = 1_000_000
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def money(rng: random.Random, top: int) -> Decimal128:
    return Decimal128(f"{rng.randint(0, top * 100) / 100:.2f}")


def entries(n: int, rows: int, rng: random.Random) -> list[dict[str, Any]]:
    """n links sharing `rows` users, largest subs first, every field of the contract filled."""
    out: list[dict[str, Any]] = []
    for i in range(n):
        subs = max(1, rows // n + rng.randint(-20, 20))
        unsubs = rng.randint(0, subs)
        code = "".join(rng.choices(string.ascii_letters + string.digits, k=16))
        out.append(
            {"invite_link": f"https://t.me/+{code}", "subs": subs, "unsubs": unsubs, "net_subs": subs - unsubs,
             "funnel": rng.randint(0, subs), "leads": rng.randint(0, subs), "sales": rng.randint(0, 10),
             "buyers": rng.randint(0, 5), "profit": money(rng, 100_000), "cost": money(rng, 10_000),
             "romi": money(rng, 900), "cpc": money(rng, 100), "cpc_net": money(rng, 120), "cac": money(rng, 2_000),
             "cr_sales": money(rng, 100), "retention_d1": money(rng, 100), "retention_d7": money(rng, 100),
             "retention_d30": None if i % 7 == 0 else money(rng, 100)}
        )  # fmt: skip
    out.sort(key=lambda e: (-e["subs"], e["invite_link"]))
    return out


def seed(db: Any, creator_id: int, links: int) -> None:
    counts = ("subs", "sales", "leads", "funnel", "unsubs", "net_subs")
    metrics = {field: 150 if field in counts else Decimal128("1.5") for field in NUMBER_METRIC_NAMES}
    for report_id, layout in (("with-bytes", "both"), ("entries-only", "entries"), ("bytes-only", "bytes")):
        db[COLLECTIONS.reports].insert_one(
            {**metrics, "_id": report_id, "creator_id": creator_id, "channel_id": Int64(-1001), "name": "big",
             "status": "success", "budget": Decimal128("1000000"), "created_at": T0, "updated_at": T0,
             "subs": ROWS, "currency": "RUB", "exchange_rates": {"USD": Decimal128("95")},
             "profit_by_currency": {"RUB": Decimal128("1"), "USD": Decimal128("2")}, "warnings": [],
             "inputs_version": 0, "applied_inputs_version": 0}
        )  # fmt: skip
        table = entries(links, ROWS, random.Random(7))
        doc: dict[str, Any] = {"_id": report_id, "creator_id": creator_id, "applied_inputs_version": 0,
                               "computed_from": T0, "links": table}  # fmt: skip
        if layout != "entries":
            doc[LINKS_JSON_FIELD] = Binary(encode_links(table))
        db[COLLECTIONS.report_links].insert_one(doc)
        if layout == "bytes":
            answer = answer_document(creator_id, 0, T0, table)
            db[LINKS_ANSWER_COLLECTION].insert_one({"_id": report_id, **answer})


def timed(client: httpx.Client, method: str, path: str, reads: int, **kwargs: Any) -> tuple[float, int]:
    """Median wall milliseconds of `reads` sequential requests, and the answer's size."""
    times = []
    size = 0
    for _ in range(reads):
        started = time.perf_counter()
        response = client.request(method, path, **kwargs)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text[:300]
        size = len(response.content)
    return statistics.median(times), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--links", type=int, default=10_000)
    parser.add_argument("--reads", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fallback-reads", type=int, default=5, help="reads of the table without kept bytes")
    args = parser.parse_args()

    ensure_rabbitmq()
    mongo = MongoServer()
    mongo.start()
    tag = uuid.uuid4().hex[:8]
    settings = Settings(mongo_url=mongo.url, mongo_db=f"bench_links_{tag}", rabbit_url=rabbit_url(),
                        namespace=f"bench.links.{tag}")  # fmt: skip
    env = settings_env(settings)
    gateway = ServiceProcess("gateway", "services.gateway.main:app", free_port(), env, Path(tempfile.mkdtemp()))
    try:
        gateway.start()
        gateway.wait_ready()
        token = subprocess.run(
            [sys.executable, "-m", "services.gateway.tokens", "create", "bench"],
            env=env, capture_output=True, text=True, check=True,
        ).stdout.strip().splitlines()[-1]  # fmt: skip
        client: MongoClient[dict[str, Any]]
        with MongoClient(settings.mongo_url, tz_aware=True) as client:
            db = client[settings.mongo_db]
            user = db[COLLECTIONS.users].find_one({"name": "bench"})
            assert user is not None
            creator_id = user["_id"]
            seed(db, creator_id, args.links)
        headers = {"Authorization": f"Bearer {token}"}
        results: dict[str, list[float]] = {"links": [], "report": [], "fallback": [], "bytes_only": []}
        sizes: dict[str, int] = {}
        with httpx.Client(base_url=gateway.url, headers=headers, timeout=60) as http:
            timed(http, "GET", "/sales/analytic/report/with-bytes/links", 3)  # warm-up
            for _ in range(args.rounds):
                ms, sizes["links"] = timed(http, "GET", "/sales/analytic/report/with-bytes/links", args.reads)
                results["links"].append(ms)
                ms, sizes["report"] = timed(
                    http, "POST", "/sales/analytic/report", args.reads, json={"report_id": "with-bytes"}
                )
                results["report"].append(ms)
                ms, sizes["fallback"] = timed(
                    http, "GET", "/sales/analytic/report/entries-only/links", args.fallback_reads
                )
                results["fallback"].append(ms)
                ms, sizes["bytes_only"] = timed(http, "GET", "/sales/analytic/report/bytes-only/links", args.reads)
                results["bytes_only"].append(ms)
            same = (
                http.get("/sales/analytic/report/with-bytes/links").content
                == http.get("/sales/analytic/report/entries-only/links").content
            )
        assert same, "the kept bytes and the encoded entries must be the same answer"
        links, report, fallback, alone = (
            statistics.median(results[k]) for k in ("links", "report", "fallback", "bytes_only")
        )
        print(
            f"links read, {args.links} links ({sizes['links']:,} bytes), bytes beside the entries: median {links:.1f} ms"
        )
        print(f"report read (baseline, {sizes['report']:,} bytes): median {report:.1f} ms")
        print(f"links read without kept bytes (fallback): median {fallback:.1f} ms")
        print(f"links read, answer document of its own: median {alone:.1f} ms")
        print(f"ratio bytes-alone/report: {alone / report:.2f}x")
        print(f"ratio links/report: {links / report:.2f}x; fallback/report: {fallback / report:.2f}x")
        print(f"per round (links, report, fallback): {results}")
    finally:
        gateway.stop()
        delete_namespace(settings.rabbit_url, settings.namespace)
        mongo.remove()


if __name__ == "__main__":
    main()
