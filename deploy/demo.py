"""The demo the run command ends with: a token, a workbook with Russian headers uploaded and
reported, then the sandbox platforms connected and synced into the same report.

    python -m deploy.demo --gateway http://127.0.0.1:8000
"""

from __future__ import annotations

import argparse
import io
import random
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from openpyxl import Workbook

from deploy.demo_connectors import sync_sandboxes

CHANNEL = -1001234567890
HEADERS = [
    "ID пользователя", "Имя", "Продукт", "Сумма покупки", "Юзернейм", "Премиум", "Телефон",
    "Статус", "Дата подписки", "Дата действия", "Пригласительная ссылка",
]  # fmt: skip
METRICS = [
    "subs", "funnel", "leads", "sales", "profit", "romi", "cpc", "cpf", "cpl", "cac",
    "cr_funnel", "cr_leads", "cr_sales", "avg_funnel", "avg_lead", "avg_sale", "premium_percent", "username_percent",
]  # fmt: skip


def sample_workbook(rows: int = 2_000, seed: int = 1) -> bytes:
    """A deterministic campaign export as a Russian-speaking seller would have it."""
    rnd = random.Random(seed)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Подписчики")
    ws.append(HEADERS)
    start = datetime(2026, 10, 1, 9, 0)
    for i in range(rows):
        sub = start + timedelta(minutes=rnd.randrange(30 * 24 * 60))
        status = rnd.choices(["", "воронка", "лид", "продажа"], weights=[60, 20, 12, 8])[0]
        action = (sub + timedelta(hours=rnd.randrange(1, 240))).strftime("%d.%m.%Y %H:%M") if status else None
        amount = f"{rnd.choice([990, 1990, 4990])}.00" if status == "продажа" else None
        ws.append([
            700_000_000 + i, f"Пользователь {i}", "Курс" if status else None, amount,
            f"@user{i}" if rnd.random() < 0.7 else None, "да" if rnd.random() < 0.2 else "нет",
            None, status, sub.strftime("%d.%m.%Y %H:%M"), action, "https://t.me/+demo",
        ])  # fmt: skip
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def issue_token(name: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "services.gateway.tokens", "create", name], capture_output=True, text=True, check=True
    )
    return out.stdout.strip().splitlines()[-1]


def wait_report(client: httpx.Client, report_id: str, timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        report: dict[str, Any] = client.post("/sales/analytic/report", json={"report_id": report_id}).json()
        if report["status"] in ("success", "failed") or time.monotonic() > deadline:
            return report
        time.sleep(0.5)


def print_report(title: str, report: dict[str, Any]) -> None:
    print(f"\n== {title}: {report['name']} ({report['id']}) status={report['status']} budget={report['budget']}")
    for name in METRICS:
        print(f"   {name:<17} {report.get(name)}")
    for source in report.get("source_reports", []):
        print(f"   source {source['kind']:<10} {source['name']:<30} {source['status']:<10} rows={source['rows']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.demo", description=__doc__)
    parser.add_argument("--gateway", default="http://127.0.0.1:8000")
    parser.add_argument("--sweetclub", default=None)
    parser.add_argument("--eduzz", default=None)
    parser.add_argument("--ofd", default=None)
    parser.add_argument("--token-file", default=".run/demo-token")
    args = parser.parse_args(argv)

    token = issue_token("demo")
    Path(args.token_file).parent.mkdir(parents=True, exist_ok=True)
    Path(args.token_file).write_text(token)
    with httpx.Client(base_url=args.gateway, headers={"Authorization": f"Bearer {token}"}, timeout=300) as client:
        started = time.perf_counter()
        created = client.post(
            "/sales/create",
            params={"channel_id": CHANNEL, "name": "Демо-кампания", "budget": "250000"},
            files={"file": ("campaign.xlsx", sample_workbook(), "application/octet-stream")},
        )
        if created.status_code != 200:
            print(f"upload failed: {created.status_code} {created.text}", file=sys.stderr)
            return 1
        report = wait_report(client, created.json()["report_id"])
        print_report(f"Excel upload, reported in {time.perf_counter() - started:.1f} s", report)
        if report["status"] != "success":
            return 1
        platforms = {"sweetclub": args.sweetclub, "eduzz": args.eduzz, "ofd": args.ofd}
        if any(platforms.values()):
            print("\n== Connecting the sandbox platforms")
            sync_sandboxes(client, report["id"], CHANNEL, {k: v for k, v in platforms.items() if v})
            time.sleep(2)  # let analytics fold the last page in
            print_report("After syncing the sandbox platforms", wait_report(client, report["id"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
