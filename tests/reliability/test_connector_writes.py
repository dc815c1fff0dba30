"""SweetClub writes whose answer is lost after they committed, through the gateway and the
connectors service: `sale/add` and `refund/add` each hit by "commit, then lose the answer" (the
connection dropped, the answer held past the client's timeout, a 500 instead of the answer), one
command after another. Every `sale/add` command creates exactly one sale on the platform; every
`refund/add` command refunds its sale and the report counts it refunded.

Default: 12 commands of each; `SALESWIRE_LONG_TESTS=1`: 50 (`SALESWIRE_WRITE_FAULTS` overrides).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.connectors.conftest import Sandbox, control, sandbox  # noqa: F401 - the session fixture
from tests.e2e.conftest import Stack
from tests.infra import MongoServer
from tests.reliability.connector_stack import TUNING, Seller, report_exact, until
from tests.reliability.harness import LONG, running_stack

COMMANDS = int(os.environ.get("SALESWIRE_WRITE_FAULTS", 50 if LONG else 12))
# The held answer outlives the client's 2 s timeout (TUNING), then is dropped.
LOST: list[dict[str, Any]] = [
    {"fault": "commit_drop"},
    {"fault": "commit_timeout", "delay": 3},
    {"fault": "commit_500"},
]
SALE = {"brand_id": "2", "product_type": "1", "product_quantity": "1", "product_unit": "1",
        "sale_channel_id": "1", "production_date": "2024-03-30", "delivery_date": "2024-04-02"}  # fmt: skip


@pytest.fixture
def write_stack(mongo_server: MongoServer, rabbitmq: str) -> Iterator[Stack]:
    with running_stack(mongo_server.url, rabbitmq, connectors=True, extra_env=TUNING) as stack:
        yield stack


def lose_next(url: str, path: str, n: int) -> None:
    control(url, "faults", [{**LOST[n % len(LOST)], "path": path, "method": "POST"}])


def served(url: str) -> int:
    faults: dict[str, int] = control(url, "stats", method="GET")["faults_served"]  # type: ignore[index]
    return sum(v for k, v in faults.items() if k.startswith("commit_"))


@pytest.mark.timeout(3600 if LONG else 900)
def test_a_lost_sale_add_answer_never_makes_a_second_sale(write_stack: Stack, sandbox: Sandbox) -> None:  # noqa: F811
    url = sandbox.sweetclub
    control(url, "reset", {"size": 30, "seed": 3})
    seller = Seller(write_stack, "wanda", "sweetclub", url)
    results: list[dict[str, Any]] = []
    started = time.monotonic()
    for n in range(COMMANDS):
        lose_next(url, "/api/sale/add$", n)
        # Half the commands bring their own internal_order; for the others the connector makes one.
        body = {**SALE, "product_price": str(100 + n), **({"internal_order": f"rel-{n}"} if n % 2 else {})}
        out = seller.command("sweetclub/sales", body)
        assert out["state"] == "done", (n, out)
        results.append(out["result"])
    assert served(url) == COMMANDS, "every command's answer was to be lost once"

    truth = control(url, "truth", method="GET")["sales"]  # type: ignore[index]
    made = [s for s in truth if int(s["id"]) > 40030]
    assert len(made) == COMMANDS, f"{len(made)} sales on the platform for {COMMANDS} commands"
    assert [s["total"] for s in made] == [f"{100 + n}" for n in range(COMMANDS)]  # one each, in order
    orders = [s["internal_order"] for s in made]
    assert all(orders) and len(set(orders)) == COMMANDS
    assert all(orders[n] == f"rel-{n}" for n in range(1, COMMANDS, 2))
    for n, result in enumerate(results):
        assert result["outcome"] in ("created", "already created"), (n, result)
        assert str(result["sale_id"]) == made[n]["id"], (n, result)
    print(
        f"\n{COMMANDS} sale/add commands, every answer lost after the commit: {len(made)} sales created, "
        f"{sum(r['outcome'] == 'already created' for r in results)} found by their internal_order, "
        f"{time.monotonic() - started:.0f}s"
    )


@pytest.mark.timeout(3600 if LONG else 900)
def test_a_lost_refund_add_answer_still_refunds_in_the_report(write_stack: Stack, sandbox: Sandbox) -> None:  # noqa: F811
    url = sandbox.sweetclub
    control(url, "reset", {"size": COMMANDS * 2 + 20, "seed": 4, "refund_share": 0})
    seller = Seller(write_stack, "rhea", "sweetclub", url)
    seller.sync()
    truth = control(url, "truth", method="GET")
    until(lambda: seller.source()["status"] == "success", 180, "first sync")
    until(lambda: report_exact(seller.report(), "sweetclub", truth), 120, "report before the refunds")

    started = time.monotonic()
    targets = [s["id"] for s in truth["sales"][:COMMANDS]]  # type: ignore[index]
    for n, sale_id in enumerate(targets):
        lose_next(url, "/api/refund/add$", n)
        out = seller.command("sweetclub/refunds", {"sale_id": sale_id, "return_reason_id": "3"})
        assert out["state"] == "done", (n, out)
        assert out["result"]["outcome"] in ("refunded", "already refunded"), (n, out)
    assert served(url) == COMMANDS

    after = control(url, "truth", method="GET")
    assert all(s["status"] == "0" for s in after["sales"] if s["id"] in targets)  # type: ignore[index]
    assert sum(s["status"] == "0" for s in after["sales"]) == COMMANDS  # type: ignore[index]

    def reflected() -> dict[str, Any] | None:
        report = seller.report()
        return report if report_exact(report, "sweetclub", after) else None

    report = until(reflected, 120, "every refund reflected in the report")
    refunded = {r["extra"]["external_id"] for r in seller.stored_rows() if r["status"] == "refunded"}
    assert refunded == set(targets)
    print(
        f"\n{COMMANDS} refund/add commands, every answer lost after the commit: all refunded on the platform "
        f"and in the report ({report['sales']} sales), {time.monotonic() - started:.0f}s"
    )
