"""The connector half of the demo: connect each sandbox platform, attach it to the demo report for
a wide period, sync, and wait for every sync to finish (progress printed as it goes)."""

from __future__ import annotations

import time
from typing import Any

import httpx

SANDBOX_CREDENTIALS: dict[str, dict[str, str]] = {
    "sweetclub": {"username": "testapi@testapi.com", "password": "testapi@testapi.com"},
    "eduzz": {"token": "sandbox-eduzz-token"},
    "ofd": {"yandex_key": "sandbox-yandex-key", "ofd_key": "sandbox-ofd-key"},
}


def sync_sandboxes(
    client: httpx.Client, report_id: str, channel_id: int, base_urls: dict[str, str], timeout: float = 600
) -> None:
    pending: dict[str, tuple[str, str]] = {}
    for kind, base_url in base_urls.items():
        created = client.post(
            "/connections",
            json={"kind": kind, "channel_id": channel_id, "base_url": base_url,
                  "credentials": SANDBOX_CREDENTIALS[kind], "poll_interval_seconds": 0},
        )  # fmt: skip
        created.raise_for_status()
        connection_id = created.json()["id"]
        source = client.post(
            f"/connections/{connection_id}/sources",
            json={"report_id": report_id, "period_start": "2000-01-01", "period_end": "2035-12-31"},
        )
        source.raise_for_status()
        client.post(f"/connections/{connection_id}/sync", json={"source_report_id": source.json()["id"]})
        pending[kind] = (connection_id, source.json()["id"])
        print(f"   {kind}: connection {connection_id} attached, sync requested")
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for kind, (connection_id, source_id) in list(pending.items()):
            state: dict[str, Any] = client.get(f"/connections/{connection_id}/sources/{source_id}").json()
            if state["status"] in ("success", "failed"):
                print(f"   {kind}: sync {state['status']} — progress {state.get('progress')}")
                del pending[kind]
        time.sleep(1)
    for kind in pending:
        print(f"   {kind}: sync still running after {timeout:.0f} s")
