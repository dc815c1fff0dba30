"""Which queue a routing key reaches: the label of the redelivery and dead-letter counters."""

from __future__ import annotations

import pytest

from shared import contracts, topology
from shared.settings import Settings


@pytest.mark.parametrize(
    ("pattern", "key", "matches"),
    [
        ("command.upload_excel", "command.upload_excel", True),
        ("command.upload_excel", "command.upload_excel.x", False),
        ("command.sweetclub.*", "command.sweetclub.sale_add", True),
        ("command.sweetclub.*", "command.sweetclub", False),
        ("command.sweetclub.*", "command.sweetclub.a.b", False),
        ("event.#", "event", True),
        ("event.#", "event.a.b", True),
        ("#.ingested", "event.sales.ingested", True),
        ("#.ingested", "event.sales", False),
    ],
)
def test_topic_matching_follows_rabbitmq(pattern: str, key: str, matches: bool) -> None:
    assert topology.topic_matches(pattern, key) is matches


def test_every_message_routing_key_reaches_at_most_one_queue() -> None:
    for key in topology.ROUTING_KEYS.values():
        assert sum(topology.topic_matches(s.routing_key, key) for s in topology.ALL_QUEUES) <= 1, key


def test_a_dead_letter_is_counted_under_its_dlq_name() -> None:
    settings = Settings(namespace="ns")
    spec = topology.queue_for("command.sweetclub.refund_add")
    assert spec == topology.SWEETCLUB_COMMANDS
    assert topology.dead_letter_queue_name(settings, spec) == "ns.connectors.sweetclub.dlq"
    assert topology.queue_for("event.report_updated") is None  # nobody consumes it


def test_recompute_report_is_a_command_with_its_own_analytics_queue() -> None:
    spec = topology.queue_for(topology.ROUTING_KEYS[contracts.RecomputeReport])
    assert spec == topology.RECOMPUTE_REPORT
    assert spec.name == "analytics.recompute-report"
    assert contracts.RecomputeReport in topology.COMMANDS  # published mandatory: must reach a queue
