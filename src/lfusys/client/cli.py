"""The client commands of ``lfusys``: login, upload, ls, download, rm (wired into :mod:`lfusys.cli`).

They talk to a server over HTTP with a personal API token, and need none of the server's settings.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lfusys.client.api import AsyncClient, FileInfo, UploadProgress, create_token
from lfusys.client.errors import FileChanged, LfusysError

COMMANDS = frozenset({"login", "upload", "ls", "download", "rm"})
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_FILE_CHANGED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_CODES = (
    "exit status of login, upload, ls, download and rm: 0 done; 1 an error (one line on stderr);"
    " 2 bad usage or not logged in; 3 a file changed since its interrupted upload; 130 interrupted"
    " (run the same command again to resume)"
)
URL_VARIABLE, TOKEN_VARIABLE = "LFUSYS_URL", "LFUSYS_TOKEN"


class UsageError(Exception):
    """Bad usage or configuration (exit status 2)."""


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The client subcommands, on ``lfusys``'s parser."""
    login = commands.add_parser(
        "login", help="sign in to a server and keep a personal API token for upload, ls, download and rm"
    )
    login.add_argument("--server", help=f"the server's URL (default: {URL_VARIABLE}, else the saved one)")

    upload = commands.add_parser(
        "upload", help="upload files; an interrupted upload of the same name and size is resumed"
    )
    upload.add_argument("files", nargs="+", metavar="FILE")
    upload.add_argument("--concurrency", type=_positive, default=4, help="chunks in flight at once (default: 4)")
    upload.add_argument("--json", action="store_true", help="one JSON object per event and result, per line")
    upload.add_argument("--restart", action="store_true", help="start every upload anew instead of resuming")

    ls = commands.add_parser("ls", help="list your files, newest first")
    ls.add_argument("--json", action="store_true", help="one JSON object per file, per line")

    download = commands.add_parser("download", help="save a file (an interrupted download is carried on)")
    download.add_argument("file_id", metavar="ID")
    download.add_argument("-o", "--output", metavar="PATH", help="where (default: the file's name, here)")

    rm = commands.add_parser("rm", help="delete a file")
    rm.add_argument("file_id", metavar="ID")


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def run(args: argparse.Namespace) -> int:
    """Run a client command; its exit status. Errors are one line on stderr."""
    try:
        if args.command == "login":
            return _login(args)
        server, token = credentials()
        with asyncio.Runner(loop_factory=_fast_loop()) as runner:
            return runner.run(_until_interrupted(_RUNNERS[args.command](args, AsyncClient(server, token))))
    except KeyboardInterrupt:
        _fail("interrupted; run the same command again to resume")
        return EXIT_INTERRUPTED
    except UsageError as exc:
        _fail(str(exc))
        return EXIT_USAGE
    except FileChanged as exc:
        _fail(f"{exc}; pass --restart to upload it anew")
        return EXIT_FILE_CHANGED
    except LfusysError as exc:
        _fail(str(exc))
        return EXIT_ERROR


async def _until_interrupted(command: Coroutine[Any, Any, int]) -> int:
    """Run ``command``; Ctrl-C (SIGINT) cancels it and is then raised as :class:`KeyboardInterrupt`.

    The handler is the event loop's own (uvloop's too), so the interruption reaches the command at its
    next await, wherever the main thread was when the signal came."""
    loop = asyncio.get_running_loop()
    running = asyncio.current_task()
    assert running is not None
    interrupted = False

    def interrupt() -> None:
        nonlocal interrupted
        interrupted = True
        running.cancel()

    try:
        loop.add_signal_handler(signal.SIGINT, interrupt)
    except (NotImplementedError, RuntimeError):  # no signal handlers here (Windows): Python's own applies
        return await command
    try:
        return await command
    except asyncio.CancelledError:
        if interrupted:
            raise KeyboardInterrupt from None
        raise
    finally:
        loop.remove_signal_handler(signal.SIGINT)


def _fail(message: str) -> None:
    print(f"lfusys: {message}", file=sys.stderr, flush=True)


# --- configuration ------------------------------------------------------------------------------


def config_path() -> Path:
    """``$XDG_CONFIG_HOME/lfusys/config.json`` (``~/.config/lfusys/config.json`` by default)."""
    base = os.environ.get("XDG_CONFIG_HOME", "")
    return (Path(base) if os.path.isabs(base) else Path.home() / ".config") / "lfusys" / "config.json"


def _fast_loop() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (it comes with the server's packages; not on
    Windows): a chunk handed to its sockets is never copied. Else asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _saved() -> dict[str, str]:
    path = config_path()
    try:
        saved = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {path}: {exc}; run lfusys login again") from None
    return {key: value for key, value in saved.items() if isinstance(value, str)} if isinstance(saved, dict) else {}


def credentials() -> tuple[str, str]:
    """The server and token: ``LFUSYS_URL`` / ``LFUSYS_TOKEN``, else what ``lfusys login`` saved."""
    saved = _saved()
    server = os.environ.get(URL_VARIABLE) or saved.get("server")
    token = os.environ.get(TOKEN_VARIABLE) or saved.get("token")
    if not server or not token:
        raise UsageError(f"not logged in: run lfusys login --server URL (or set {URL_VARIABLE} and {TOKEN_VARIABLE})")
    return server, token


def save_credentials(server: str, token: str) -> Path:
    """Write ``{server, token}`` to the config file (mode 0600, in a directory of mode 0700)."""
    path = config_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump({"server": server, "token": token}, out)
        out.write("\n")
    temporary.chmod(0o600)
    temporary.replace(path)
    return path


# --- commands -----------------------------------------------------------------------------------


def _login(args: argparse.Namespace) -> int:
    server = args.server or os.environ.get(URL_VARIABLE) or _saved().get("server")
    if not server:
        raise UsageError("login: which server? pass --server URL")
    try:
        email = input("Email: ").strip()
        if sys.stdin.isatty():
            password = getpass.getpass("Password: ")
        else:
            print("Password: ", end="", file=sys.stderr, flush=True)
            password = sys.stdin.readline().rstrip("\r\n")
    except EOFError:
        raise UsageError("login: no email or password given") from None
    if not email or not password:
        raise UsageError("login: no email or password given")
    me = asyncio.run(_signed_in(server, email, password))
    path = save_credentials(server, me["token"])
    print(f"logged in to {server} as {me.get('email', email)}; token saved in {path}")
    return EXIT_OK


async def _signed_in(server: str, email: str, password: str) -> dict[str, Any]:
    """A new token, checked: the token's user (``me``) and ``token``."""
    token = await create_token(server, email, password, name=f"lfusys CLI on {socket.gethostname()}"[:100])
    async with AsyncClient(server, token) as client:
        return {**await client.me(), "token": token}


async def _ls(args: argparse.Namespace, client: AsyncClient) -> int:
    async with client:
        files = await client.list_files()
    if args.json:
        for info in files:
            print(json.dumps(asdict(info)))
        return EXIT_OK
    if not files:
        print("no files", file=sys.stderr)
        return EXIT_OK
    rows = [[info.id, _size(info.size), info.created_at[:19].replace("T", " "), info.name] for info in files]
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    for row in rows:
        print("  ".join([row[0].ljust(widths[0]), row[1].rjust(widths[1]), row[2].ljust(widths[2]), row[3]]))
    return EXIT_OK


async def _download(args: argparse.Namespace, client: AsyncClient) -> int:
    async with client:
        info = await client.file(args.file_id)
        dest = Path(args.output) if args.output else Path(Path(info.name).name or info.id)
        if dest.is_dir():
            dest = dest / (Path(info.name).name or info.id)
        await client.download(args.file_id, dest)
    print(f"saved {info.name} ({_size(info.size)}) to {dest}")
    return EXIT_OK


async def _rm(args: argparse.Namespace, client: AsyncClient) -> int:
    async with client:
        await client.delete(args.file_id)
    print(f"deleted {args.file_id}")
    return EXIT_OK


async def _upload(args: argparse.Namespace, client: AsyncClient) -> int:
    paths = [Path(name) for name in args.files]
    sizes = [path.stat().st_size if path.is_file() else 0 for path in paths]
    if args.json:
        view: _View = _JsonView()
    elif sys.stdout.isatty():
        view = _RichView(sum(sizes))
    else:
        view = _PlainView()
    status = EXIT_OK
    async with client:
        with view:
            for path in paths:
                try:
                    info = await client.upload(
                        path, concurrency=args.concurrency, on_progress=view.progress, resume=not args.restart
                    )
                except FileChanged as exc:
                    view.failed(path, f"{exc}; pass --restart to upload it anew")
                    status = EXIT_FILE_CHANGED
                except LfusysError as exc:
                    view.failed(path, str(exc))
                    status = max(status, EXIT_ERROR)
                else:
                    view.uploaded(path, info)
    return status


_RUNNERS: dict[str, Callable[[argparse.Namespace, AsyncClient], Coroutine[Any, Any, int]]] = {
    "upload": _upload,
    "ls": _ls,
    "download": _download,
    "rm": _rm,
}


# --- upload output ------------------------------------------------------------------------------


class _View:
    """How ``upload`` shows progress and results (errors go to stderr too, one line each)."""

    def __enter__(self) -> _View:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def progress(self, progress: UploadProgress) -> None:
        raise NotImplementedError

    def uploaded(self, path: Path, info: FileInfo) -> None:
        raise NotImplementedError

    def failed(self, path: Path, message: str) -> None:
        _fail(message)


class _JsonView(_View):
    def progress(self, progress: UploadProgress) -> None:
        if progress.event == "done":
            return  # the "uploaded" line says it, with the file
        fields = {key: value for key, value in asdict(progress).items() if key != "path"}
        _json_line({**fields, "file": str(progress.path)})

    def uploaded(self, path: Path, info: FileInfo) -> None:
        _json_line({"event": "uploaded", "file": str(path), "file_id": info.id, **asdict(info)})

    def failed(self, path: Path, message: str) -> None:
        _json_line({"event": "error", "file": str(path), "error": message})
        super().failed(path, message)


def _json_line(fields: dict[str, Any]) -> None:
    print(json.dumps(fields), flush=True)


class _PlainView(_View):
    """A line when a file starts, at most one a second while it goes, and one when it is done."""

    def __init__(self) -> None:
        self._started = time.monotonic()
        self._shown = 0.0

    def progress(self, progress: UploadProgress) -> None:
        now = time.monotonic()
        name = progress.path.name
        if progress.event == "start":
            self._started = now
            resumed = f", resuming ({progress.resumed_chunks} chunks already stored)" if progress.resumed_chunks else ""
            print(f"{name}: {_size(progress.total_bytes)} in {progress.total_chunks} chunks{resumed}", flush=True)
        elif progress.event == "chunk" and now - self._shown >= 1.0:
            self._shown = now
            print(f"{name}: {_speed_line(progress, now - self._started)}", flush=True)
        elif progress.event == "finalizing":
            print(f"{name}: all chunks sent, the server is assembling the file", flush=True)

    def uploaded(self, path: Path, info: FileInfo) -> None:
        print(f"{path.name}: uploaded as {info.id} ({_size(info.size)}, checksum verified)", flush=True)


def _speed_line(progress: UploadProgress, elapsed: float) -> str:
    percent = 100 * progress.done_bytes / progress.total_bytes
    speed = progress.sent_bytes / elapsed if elapsed > 0 else 0.0
    left = progress.total_bytes - progress.done_bytes
    eta = f", ETA {left / speed:.0f}s" if speed > 0 else ""
    return f"{percent:.0f}% ({_size(progress.done_bytes)} of {_size(progress.total_bytes)}), {_size(int(speed))}/s{eta}"


class _RichView(_View):
    """Bars for each file and for them all, with speed and time left."""

    def __init__(self, total_bytes: int) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
        )
        self._total = self._bars.add_task("total", total=total_bytes)
        self._task: Any = None
        self._counted = 0

    def __enter__(self) -> _View:
        self._bars.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._bars.stop()

    def progress(self, progress: UploadProgress) -> None:
        if progress.event == "start":
            self._task = self._bars.add_task(
                progress.path.name, total=progress.total_bytes, completed=progress.done_bytes
            )
            self._bars.advance(self._total, progress.done_bytes)
        else:
            self._bars.update(self._task, completed=progress.done_bytes)
            self._bars.advance(self._total, progress.done_bytes - self._counted)
        self._counted = progress.done_bytes

    def uploaded(self, path: Path, info: FileInfo) -> None:
        self._bars.console.print(
            f"{path.name}: uploaded as {info.id} ({_size(info.size)}, checksum verified)", markup=False, highlight=False
        )
        self._counted = 0

    def failed(self, path: Path, message: str) -> None:
        _fail(message)  # shown above the bars while they are live
        self._counted = 0


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"
