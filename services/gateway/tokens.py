"""Token administration: `python -m services.gateway.tokens create NAME` prints a new token for
the user NAME (created on first use); `revoke TOKEN` revokes one. Only hashes are stored."""

from __future__ import annotations

import argparse
import asyncio
import sys

from services.gateway.auth import create_user_token, revoke_token
from shared.mongo import ensure_indexes, make_client
from shared.settings import get_settings


async def _run(args: argparse.Namespace) -> int:
    settings = get_settings()
    client = make_client(settings)
    try:
        db = client[settings.mongo_db]
        await ensure_indexes(db)
        if args.command == "create":
            user, token = await create_user_token(db, args.name)
            print(token)
            print(f"user {user.name} (id {user.id})", file=sys.stderr)
            return 0
        if await revoke_token(db, args.token):
            print("revoked", file=sys.stderr)
            return 0
        print("no such token", file=sys.stderr)
        return 1
    finally:
        await client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.gateway.tokens", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create", help="issue a token for a user (created if new)")
    create.add_argument("name")
    revoke = sub.add_parser("revoke", help="revoke a token")
    revoke.add_argument("token")
    return asyncio.run(_run(parser.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
