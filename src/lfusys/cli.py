"""``lfusys``: serve | worker | migrate | dead-letters | uploads | --version; as a client of a server:
login | upload | ls | download | rm."""

from __future__ import annotations

import argparse

from lfusys import __version__
from lfusys.client import cli as client_cli

_UPLOADS_SHOWN = 100
_LISTED_STATES = ("failed", "stalled", "finalizing")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lfusys", description=__doc__, epilog=client_cli.EXIT_CODES)
    parser.add_argument("--version", action="version", version=f"lfusys {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the web server (and the background worker)")
    serve.add_argument("--host", help="address to bind (default: LFUSYS_HOST)")
    serve.add_argument("--port", type=int, help="port to bind (default: LFUSYS_PORT)")
    serve.add_argument("--workers", type=int, default=1, help="server processes (default: 1)")

    commands.add_parser("worker", help="run only the event worker and janitor (no web server)")
    commands.add_parser(
        "migrate", help="apply pending database migrations (aws: create or update every resource) and exit"
    )
    dead_letters = commands.add_parser(
        "dead-letters", help="list storage events that could not be handled (JSON lines: id, receives, when, body)"
    )
    dead_letters.add_argument(
        "--redrive", action="store_true", help="put them back on the queue for the worker instead (all, or --id)"
    )
    dead_letters.add_argument(
        "--id", dest="ids", action="extend", nargs="+", metavar="ID", help="with --redrive: only these dead letters"
    )

    uploads = commands.add_parser("uploads", help="list the upload sessions of every user that are in a given state")
    uploads.add_argument(
        "--status",
        required=True,
        choices=_LISTED_STATES,
        help="failed; finalizing; or stalled (idle for LFUSYS_STALLED_AFTER, or finalizing under a lapsed lease)",
    )
    uploads.add_argument(
        "--limit", type=_positive, default=_UPLOADS_SHOWN, help=f"at most this many (default: {_UPLOADS_SHOWN})"
    )
    uploads.add_argument("--json", action="store_true", help="one JSON object per line")
    client_cli.add_commands(commands)
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "dead-letters" and args.ids and not args.redrive:
        parser.error("dead-letters: --id needs --redrive")
    if args.command in client_cli.COMMANDS:
        # A client of a server: no server settings needed.
        return client_cli.run(args)
    from lfusys import server_cli  # the server stack, loaded only for its own commands

    return server_cli.run(args)
