"""Example publisher of the public `sale recorded` event (schema version 1).

Any system can add sales to a Saleswire report by publishing JSON to the `<namespace>.bus` topic
exchange with routing key `event.sale_recorded` (persistent, ideally with publisher confirms).
The schema is in the ingest service's AsyncAPI document (`GET :8001/asyncapi`). Re-sending a sale
with the same (source, external_id) updates it; an invalid event lands in the dead-letter queue
`<namespace>.ingest.sale-recorded.dlq` with the reason (see `python -m cli.deadletters list`).

    python -m deploy.examples.publish_sale_recorded --report REPORT_ID --channel -1001234567890 \
        --external-id order-1 --amount 1990.00 --user-id 700000001
"""

from __future__ import annotations

import argparse
import asyncio
from decimal import Decimal

from prometheus_client import CollectorRegistry

from shared import contracts
from shared.broker import Bus, declare_topology, make_broker
from shared.settings import get_settings


async def publish(event: contracts.SaleRecorded) -> None:
    settings = get_settings()
    broker = make_broker(settings, registry=CollectorRegistry())
    async with broker:
        await broker.connect()
        await declare_topology(broker, settings)
        await Bus(broker, settings).publish(event)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m deploy.examples.publish_sale_recorded", description=__doc__)
    parser.add_argument("--report", required=True)
    parser.add_argument("--channel", type=int, required=True)
    parser.add_argument("--source", default="example-crm")
    parser.add_argument("--external-id", required=True)
    parser.add_argument("--amount", type=Decimal, required=True)
    parser.add_argument("--user-id", type=int, default=None)
    parser.add_argument("--product", default=None)
    args = parser.parse_args(argv)
    event = contracts.SaleRecorded(
        source=args.source,
        report_id=args.report,
        channel_id=args.channel,
        sales=[
            contracts.RecordedSale(
                external_id=args.external_id, user_id=args.user_id, purchase_amount=args.amount, product=args.product
            )
        ],
    )
    asyncio.run(publish(event))
    print(f"published sale {args.external_id} to report {args.report} (message {event.message_id})")


if __name__ == "__main__":
    main()
