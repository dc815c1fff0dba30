"""SIGKILL the connectors service while it enriches a first sync (the listing is stored and
counted, details are still being read), start it again: the report is exact, every sale is
stored once (no duplicate, no gap) and every sale ends enriched, without reading the details of
the whole account again.

Default: 1 500 sales per platform; `SALESWIRE_LONG_TESTS=1`: 20 000 (`SALESWIRE_KILL_SALES`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from tests.connectors.conftest import Sandbox, control, sandbox  # noqa: F401 - the session fixture
from tests.e2e.conftest import Stack
from tests.infra import MongoServer
from tests.reliability.connector_stack import TUNING, Seller, report_exact, until
from tests.reliability.harness import LONG, running_stack

SALES = int(os.environ.get("SALESWIRE_KILL_SALES", 20_000 if LONG else 1_500))
DETAIL = {"sweetclub": "GET /api/sale/info", "eduzz": "GET /orbita/v1/sales/{id}"}
ENRICHED = {"sweetclub": "products", "eduzz": "items"}  # what only a detail call adds to a row
STATUS = {
    "sweetclub": {"1": "sale", "0": "refunded"},
    "eduzz": {"paid": "sale", "open": "lead", "waiting_payment": "lead"},
}
# A rate budget that makes enrichment last long enough to be interrupted, short enough for a test.
OPTIONS = {"rate_per_second": 60, "burst": 10}


@pytest.fixture
def kill_stack(mongo_server: MongoServer, rabbitmq: str) -> Iterator[Stack]:
    with running_stack(mongo_server.url, rabbitmq, connectors=True, extra_env=TUNING) as stack:
        yield stack


def details_answered(url: str, kind: str) -> int:
    answers = control(url, "stats", method="GET")["answers"]  # type: ignore[index]
    return int(answers.get(DETAIL[kind], {}).get("200", 0))


@pytest.mark.timeout(3600 if LONG else 900)
@pytest.mark.parametrize("kind", ["sweetclub", "eduzz"])
def test_sigkill_mid_enrichment_leaves_an_exact_report(kill_stack: Stack, sandbox: Sandbox, kind: str) -> None:  # noqa: F811
    url = sandbox.url(kind)
    control(url, "reset", {"size": SALES, "seed": 8, "span_days": 30, "refund_share": 0.1})
    truth: Any = control(url, "truth", method="GET")
    seller = Seller(kill_stack, f"kim-{kind}", kind, url, OPTIONS)
    started = time.monotonic()
    seller.sync()
    until(lambda: details_answered(url, kind) >= SALES // 3, 600, "a third of the details read")
    before_kill = details_answered(url, kind)
    assert before_kill < SALES, "enrichment ended before the kill"
    kill_stack.restart("connectors", kill=True)
    killed_at = time.monotonic() - started

    until(lambda: seller.source()["status"] in ("success", "failed"), 900, "the sync after the restart")
    assert seller.source()["status"] == "success", seller.source()

    def enriched() -> list[dict[str, Any]] | None:
        rows = seller.stored_rows()
        return rows if len(rows) >= SALES and all(ENRICHED[kind] in r["extra"] for r in rows) else None

    rows = until(enriched, 900, "every stored sale enriched", every=2)
    ids = [r["extra"]["external_id"] for r in rows]
    assert len(ids) == len(set(ids)) == SALES, "a duplicate or a gap in the stored sales"
    want = {s["id"]: (STATUS[kind].get(s["status"], "refunded"), Decimal(s["total"])) for s in truth["sales"]}
    got = {r["extra"]["external_id"]: (r["status"], r["purchase_amount"].to_decimal()) for r in rows}
    assert got == want
    until(lambda: report_exact(seller.report(), kind, truth), 120, "the report exact")
    total_details = details_answered(url, kind)
    # Enrichment resumed where it stopped: at most the details in flight at the kill are read twice.
    assert total_details < SALES + SALES // 10, f"{total_details} detail reads for {SALES} sales"
    print(
        f"\n{kind}: {SALES} sales, SIGKILL at {killed_at:.0f}s after {before_kill} details; "
        f"{total_details} detail reads in all ({total_details - SALES} again), "
        f"exact after {time.monotonic() - started:.0f}s"
    )
