"""Dead letters from the command line (settings from the `SALESWIRE_*` environment, like the services):

    python -m cli.deadletters list    [--queue NAME] [--limit N] [--id MESSAGE_ID] [--json]
    python -m cli.deadletters replay  [--queue NAME] [--limit N] [--id MESSAGE_ID] [--json]
    python -m cli.deadletters discard [--queue NAME] [--limit N] [--id MESSAGE_ID] [--all] [--json]
    python -m cli.deadletters depths  [--json]

`--queue` takes a consumer queue's short name (`ingest.upload-excel`), its full name or its
dead-letter queue's name. `discard` refuses to drop a whole queue unless `--all` is given.
What list, replay and discard do to a message is told in `shared.deadletters`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence

from shared.deadletters import DeadLetter, UnknownQueueError, dlq_depths, process_dead_letters
from shared.settings import Settings, get_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cli.deadletters", description="List, replay and discard dead letters"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for command, summary in (
        ("list", "show dead letters with their reason, leaving them in place"),
        ("replay", "republish dead letters to the bus with their original routing key, then drop them"),
        ("discard", "drop dead letters"),
    ):
        sub = commands.add_parser(command, help=summary)
        sub.add_argument("--queue", help="consumer queue (short or full name) or its dead-letter queue")
        sub.add_argument("--limit", type=int, help="at most N messages per queue (list: 50 by default)")
        sub.add_argument("--id", dest="message_id", help="only the message with this message id")
        sub.add_argument("--json", action="store_true", help="one JSON object per line")
        if command == "discard":
            sub.add_argument("--all", action="store_true", help="allow dropping without --id or --limit")
    depths = commands.add_parser("depths", help="messages waiting in each dead-letter queue")
    depths.add_argument("--json", action="store_true")
    return parser


def _print_letters(letters: Sequence[DeadLetter], verb: str, as_json: bool) -> None:
    if as_json:
        for letter in letters:
            print(json.dumps(letter.as_json(), ensure_ascii=False))
        return
    for letter in letters:
        at = letter.dead_lettered_at.isoformat() if letter.dead_lettered_at else "-"
        print(
            f"{letter.queue}\t{letter.message_id or '-'}\t{letter.routing_key}\t{at}\t"
            f"deliveries={letter.deliveries if letter.deliveries is not None else '-'}\t{letter.reason}"
        )
    print(f"{verb}: {len(letters)} dead letter(s)", file=sys.stderr)


async def run(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = settings or get_settings()
    if args.command == "depths":
        found = await dlq_depths(settings)
        if args.json:
            print(json.dumps(found))
        else:
            for name, depth in found.items():
                print(f"{name}\t{depth}")
        return 0
    if args.limit is not None and args.limit < 1:
        print("--limit must be at least 1", file=sys.stderr)
        return 2
    if args.command == "discard" and not (args.all or args.message_id or args.limit):
        print("discard needs --id, --limit or --all", file=sys.stderr)
        return 2
    limit = args.limit if args.limit is not None or args.command != "list" else 50
    try:
        letters = await process_dead_letters(
            settings, args.command, queue=args.queue, limit=limit, message_id=args.message_id
        )
    except UnknownQueueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    verb = {"list": "listed", "replay": "replayed", "discard": "discarded"}[args.command]
    _print_letters(letters, verb, args.json)
    if args.message_id is not None and not letters:
        print(f"no dead letter with message id {args.message_id!r}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(run(argv))


if __name__ == "__main__":
    sys.exit(main())
