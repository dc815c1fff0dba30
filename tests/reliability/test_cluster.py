"""A three-node RabbitMQ cluster (scripts/rabbitmq-cluster.sh) loses the node that leads the
queues, by `kill -9` of its Erlang VM, while clients upload and SweetClub syncs run; the node is
started again and the next cycle kills the next leader.

Every upload must be accepted (two nodes of three keep every quorum queue available), every
accepted upload must end in a `success` report with the reference metrics and each of its rows
stored once, every sync must end `success` with its report's sales and profit equal to the
campaign's plus the sandbox's paid sales, and at the end no queue of the run holds a message
(ready or unacknowledged) and no dead-letter queue holds one. Each kill lands with a sync in
flight; the leader of the upload queue is killed every cycle, and if none of those kills hit the
leader of the sync queue, one more cycle kills that one. Failover time is printed per cycle: the
last upload accepted before the kill, the first one accepted after it, and the longest upload in
flight across the kill.

Default: 5 kills; `SALESWIRE_LONG_TESTS=1`: 20.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest

from shared import topology
from shared.mongo import COLLECTIONS
from shared.sale_chunks import rows_pipeline
from tests.connectors.conftest import Sandbox, control, sandbox  # noqa: F401 - the session fixture
from tests.e2e.conftest import Stack
from tests.infra import MongoServer
from tests.reliability.campaign import Row, campaign_xlsx, make_rows, metrics_of, reference_metrics
from tests.reliability.cluster import RabbitCluster
from tests.reliability.harness import LONG, dead_letter_depths, running_stack, upload, wait_report

KILLS = 20 if LONG else 5
CLIENTS = 2
DOWN_SECONDS = 3.0  # the killed node stays down this long while uploads go on
SC_CREDENTIALS = {"username": "testapi@testapi.com", "password": "testapi@testapi.com"}


@pytest.fixture(scope="module")
def cluster() -> Iterator[RabbitCluster]:
    cluster = RabbitCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture(scope="module")
def cluster_stack(mongo_server: MongoServer, cluster: RabbitCluster) -> Iterator[Stack]:
    urls = cluster.urls
    with running_stack(
        mongo_server.url, urls[0], connectors=True, rabbit_urls=",".join(urls), publish_failover_seconds=60
    ) as stack:
        yield stack


def test_cluster_has_three_running_nodes_and_replicates_every_queue(
    cluster: RabbitCluster, cluster_stack: Stack
) -> None:
    assert cluster.running_nodes() == sorted(cluster.node_name(n) for n in (1, 2, 3))
    queues = cluster.queues(cluster_stack.settings.namespace)
    expected = {topology.queue_name(cluster_stack.settings, s) for s in topology.ALL_QUEUES}
    expected |= {topology.dead_letter_queue_name(cluster_stack.settings, s) for s in topology.ALL_QUEUES}
    assert {q["name"] for q in queues} == expected
    for q in queues:
        assert q["type"] == "quorum", q
        assert sorted(q["members"]) == sorted(cluster.node_name(n) for n in (1, 2, 3)), q


@dataclass(frozen=True)
class Attempt:
    started: float
    finished: float
    status: int
    report_id: str | None
    rows: list[Row]
    budget: Decimal


@dataclass(frozen=True)
class Sync:
    connection_id: str
    source_id: str
    report_id: str
    rows: list[Row]


def _syncs(stack: Stack, sandbox: Sandbox) -> list[Sync]:  # noqa: F811
    """Three reports of carol's, each with a SweetClub source on a connection of its own."""
    h = stack.headers("carol")
    base = stack.gateway_url
    syncs: list[Sync] = []
    for i in range(3):
        rows = make_rows(30, seed=700 + i)
        r = upload(stack, "carol", campaign_xlsx(rows), budget="100", name=f"sync-{i}")
        assert r.status_code == 200, r.text
        conn = httpx.post(f"{base}/connections", headers=h, timeout=30, json={
            "kind": "sweetclub", "channel_id": -1001234567890, "base_url": sandbox.sweetclub,
            "credentials": SC_CREDENTIALS, "poll_interval_seconds": 0}).json()  # fmt: skip
        period = {"report_id": r.json()["report_id"], "period_start": "2000-01-01", "period_end": "2035-12-31"}
        source = httpx.post(f"{base}/connections/{conn['id']}/sources", headers=h, json=period, timeout=30).json()
        syncs.append(Sync(conn["id"], source["id"], r.json()["report_id"], rows))
    return syncs


def _start_sync(stack: Stack, sync: Sync) -> None:
    r = httpx.post(
        f"{stack.gateway_url}/connections/{sync.connection_id}/sync",
        headers=stack.headers("carol"),
        json={"source_report_id": sync.source_id},
        timeout=60,
    )
    assert r.status_code == 202, r.text


def _leader(queues: list[dict[str, Any]], name: str) -> str:
    return str(next(q["leader"] for q in queues if q["name"] == name))


def _members_back(cluster: RabbitCluster, namespace: str, timeout: float = 90) -> list[dict[str, Any]]:
    """Waits until every queue has its three members online again (else a second kill would leave
    a queue without a majority, which no cluster of three survives) and returns the queues. The
    restarted node starts its queue members before it opens its listener, so the first look
    usually finds them: one CLI VM per cycle (each costs seconds on a busy machine)."""
    deadline = time.monotonic() + timeout
    while True:
        queues = cluster.queues(namespace)
        if all(len(q["online"]) == 3 for q in queues):
            return queues
        if time.monotonic() >= deadline:
            raise AssertionError(f"queues did not get their members back: {queues}")
        time.sleep(0.5)


def _restart(cluster: RabbitCluster, node: int, killed_at: float, namespace: str) -> tuple[float, float, list[Any]]:
    """Starts the killed node again: (seconds to start, seconds from the kill to every member back, queues)."""
    restart = cluster.start_node(node)
    queues = _members_back(cluster, namespace)
    return restart, time.monotonic() - killed_at, queues


def _upload_in_flight(attempts_started: list[float], attempts: list[Any], timeout: float = 30) -> None:
    """Returns once some upload has started and not finished: every kill lands on one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(attempts_started) > len(attempts):
            return
        time.sleep(0.05)
    raise AssertionError("no upload in flight")


@pytest.mark.timeout(1800 if LONG else 600)
def test_killing_the_queue_leader_loses_nothing(
    cluster: RabbitCluster,
    cluster_stack: Stack,
    sandbox: Sandbox,  # noqa: F811
) -> None:
    stack = cluster_stack
    settings = stack.settings
    stack.token("alice")
    control(sandbox.sweetclub, "reset", {"size": 150, "seed": 21})
    truth = control(sandbox.sweetclub, "truth", method="GET")["sales"]  # type: ignore[index]
    paid = [s for s in truth if s["status"] == "1"]
    paid_total = sum((Decimal(s["total"]) for s in paid), Decimal(0))
    syncs = _syncs(stack, sandbox)
    files = [make_rows(n, seed=n) for n in (120, 200, 280)]
    contents = [campaign_xlsx(rows) for rows in files]
    attempts: list[Attempt] = []
    in_flight: list[float] = []  # start of every upload begun (attempts: every one finished)
    lock = threading.Lock()
    stop = threading.Event()

    def client(i: int) -> None:
        k = 0
        while not stop.is_set():
            j = (i + k) % len(files)
            budget = Decimal(1000 + 7 * k + i)
            k += 1
            started = time.monotonic()
            with lock:
                in_flight.append(started)
            try:
                r = upload(stack, "alice", contents[j], budget=str(budget), name=f"c{i}-{k}", timeout=180)
                status, rid = r.status_code, (r.json().get("report_id") if r.status_code == 200 else None)
            except httpx.HTTPError:
                status, rid = 0, None
            with lock:
                attempts.append(Attempt(started, time.monotonic(), status, rid, files[j], budget))
            time.sleep(0.2)  # a steady stream, not a flood: the three nodes share two cores

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    upload_queue = topology.queue_name(settings, topology.UPLOAD_EXCEL)
    sync_queue = topology.queue_name(settings, topology.SYNC_CONNECTION)
    figures: list[str] = []
    kills: list[float] = []
    sync_leader_killed = False
    last_restart: Future[tuple[float, float, list[Any]]] | None = None
    restarter = ThreadPoolExecutor(1)
    try:
        time.sleep(1)  # some uploads done before the first kill
        queues = cluster.queues(settings.namespace)
        cycle = 0
        while cycle < KILLS or not sync_leader_killed:
            # the upload queue's leader; past the last cycle, the sync queue's (never hit so far)
            target = upload_queue if cycle < KILLS else sync_queue
            leader_name = _leader(queues, target)
            sync_leader_killed |= leader_name == _leader(queues, sync_queue)
            led = sum(q["leader"] == leader_name for q in queues)
            leader = cluster.node_of_name(leader_name)
            _start_sync(stack, syncs[cycle % len(syncs)])
            time.sleep(0.5)  # the sync is under way
            _upload_in_flight(in_flight, attempts)
            killed_at = cluster.kill(leader)
            kills.append(killed_at)
            time.sleep(DOWN_SECONDS)
            figure = (
                f"cycle {cycle}: killed {leader_name} (led {led}/{len(queues)} queues, "
                f"{'the upload' if target == upload_queue else 'the sync'} queue's leader, a sync in flight)"
            )
            cycle += 1
            if cycle >= KILLS and sync_leader_killed:
                # The last node starts again while the uploads are checked; it must be back in the end.
                last_restart = restarter.submit(_restart, cluster, leader, killed_at, settings.namespace)
                figures.append(figure)
                break
            restart, back, queues = _restart(cluster, leader, killed_at, settings.namespace)
            figures.append(
                f"{figure}, restarted in {restart:.1f}s, members back {back:.1f}s after the kill, "
                f"upload queue now led by {_leader(queues, upload_queue)}"
            )
        # The clients go on until an upload begun after the last kill has its answer: one in flight
        # across that kill may outlast DOWN_SECONDS (its publish fails over), and a client starts its
        # next upload only after it. Bounded: the assertion below says if none came.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with lock:
                if any(a.started > kills[-1] and a.status == 200 for a in attempts):
                    break
            time.sleep(0.2)
    finally:
        stop.set()
        for t in threads:
            t.join(240)
        restarter.shutdown(wait=False)

    accepted = [a for a in attempts if a.status == 200]
    for cycle, killed_at in enumerate(kills):
        before = max((a.finished for a in accepted if a.finished < killed_at), default=float("nan"))
        after = min((a.finished for a in accepted if a.started > killed_at), default=float("nan"))
        across = [a.finished - a.started for a in accepted if a.started < killed_at < a.finished]
        figures[cycle] += (
            f"; last upload accepted {killed_at - before:.2f}s before the kill, first started after it accepted "
            f"{after - killed_at:.2f}s after; {len(across)} in flight across it (longest {max(across, default=0):.2f}s)"
        )
    statuses = {s: sum(a.status == s for a in attempts) for s in sorted({a.status for a in attempts})}
    print(f"\n{len(attempts)} uploads {statuses}\n" + "\n".join(figures))
    assert statuses.keys() == {200}, f"uploads refused while two of three nodes ran: {statuses}"
    assert all(any(a.started > k for a in accepted) for k in kills), "no upload accepted after some kill"

    db = stack.db()
    for a in accepted:
        assert a.report_id is not None
        report = wait_report(stack, "alice", a.report_id, timeout=180)
        assert report.get("status") == "success", (a.report_id, report)
        assert metrics_of(report) == reference_metrics(a.rows, a.budget), a.report_id
    # Every row of every report, in one read: each Excel row stored exactly once.
    stored: dict[str, list[int]] = {}
    for row in db[COLLECTIONS.sales].aggregate(
        [
            *rows_pipeline({}, {"report_id": {"$in": [a.report_id for a in accepted]}}),
            {"$project": {"report_id": 1, "row": 1}},
        ]
    ):
        stored.setdefault(row["report_id"], []).append(int(row["row"]))
    for a in accepted:
        rows = stored.get(str(a.report_id), [])
        assert sorted(rows) == sorted(set(rows)), f"a row stored twice in {a.report_id}"
        assert len(rows) == len(a.rows), a.report_id
    assert db.reports.count_documents({"name": {"$regex": "^c[0-9]+-"}}) == len(accepted)  # one per upload

    assert last_restart is not None
    restart, back, _ = last_restart.result(timeout=180)
    print(f"last kill: restarted in {restart:.1f}s, members back {back:.1f}s after the kill")
    # Nothing left behind in any queue: no message unacknowledged, none waiting (no sync still to
    # run either), no dead letter.
    assert _queues_idle(cluster, settings.namespace) == []
    assert dead_letter_depths(stack) == {}
    _check_syncs(stack, syncs, len(paid), paid_total)


def _check_syncs(stack: Stack, syncs: list[Sync], paid: int, paid_total: Decimal) -> None:
    """Every sync `success`, and each report holds its campaign's sales plus the sandbox's paid ones."""
    h = stack.headers("carol")
    for sync in syncs:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            progress = httpx.get(
                f"{stack.gateway_url}/connections/{sync.connection_id}/sources/{sync.source_id}", headers=h, timeout=30
            ).json()
            if progress["status"] in ("success", "failed") and progress["progress"].get("state") in ("done", "failed"):
                break
            time.sleep(0.5)
        assert progress["status"] == "success" and progress["progress"]["state"] == "done", progress
        campaign = reference_metrics(sync.rows, Decimal(100))
        expected = (
            campaign["sales"] + paid,
            (Decimal(str(campaign["profit"])) + paid_total).quantize(Decimal("0.01")),
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            report = wait_report(stack, "carol", sync.report_id, timeout=60)
            if (report.get("sales"), Decimal(str(report.get("profit")))) == expected:
                break
            time.sleep(0.5)
        assert (report.get("sales"), Decimal(str(report.get("profit")))) == expected, (sync.report_id, report)


def _queues_idle(cluster: RabbitCluster, namespace: str, timeout: float = 60) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    busy: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        busy = [q for q in cluster.queues(namespace) if q["messages_ready"] or q["messages_unacknowledged"]]
        if not busy:
            break
        time.sleep(1.5)
    return busy
