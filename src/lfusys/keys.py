"""Server keys: generated once and shared by every server process of a deployment.

The local backends keep them in the data directory (mode 0600); the aws backend keeps them in
DynamoDB (:mod:`lfusys.storage.aws.keys`), so replicas agree without any configuration."""

from __future__ import annotations

import fcntl
import json
import os
import secrets
from pathlib import Path

import msgspec

from lfusys.private_files import PRIVATE_FILE, private_directory, tighten
from lfusys.settings import Settings


class ServerKeys(msgspec.Struct, frozen=True, kw_only=True):
    jwt_access: str
    jwt_refresh: str
    csrf: str
    download_signing: str


KEY_NAMES = tuple(field.name for field in msgspec.structs.fields(ServerKeys))


def new_key() -> str:
    return secrets.token_urlsafe(48)


def load_or_create_keys(settings: Settings) -> ServerKeys:
    """Read the keys file, creating it (or any key it lacks) under an exclusive file lock.

    Secrets given in the environment (``LFUSYS_JWT_*_SECRET``) win over the stored ones.
    """
    private_directory(settings.local.data_dir)
    path = settings.local.secrets_path
    with open(path.with_suffix(".lock"), "a+b") as lock:
        # Several uvicorn workers may start together: the first creates, the rest read.
        fcntl.flock(lock, fcntl.LOCK_EX)
        stored = _read(path)
        missing = {name: new_key() for name in KEY_NAMES if not stored.get(name)}
        if missing:
            stored |= missing
            _write(path, stored)
        else:
            tighten(path, PRIVATE_FILE)
    return with_environment({name: stored[name] for name in KEY_NAMES}, settings)


def new_keys(settings: Settings) -> ServerKeys:
    """Keys made afresh, kept nowhere (secrets given in the environment still win)."""
    return with_environment({name: new_key() for name in KEY_NAMES}, settings)


def with_environment(keys: dict[str, str], settings: Settings) -> ServerKeys:
    """The keys, with the secrets given in the environment in place of stored ones."""
    if settings.auth.jwt_access_secret:
        keys["jwt_access"] = settings.auth.jwt_access_secret
    if settings.auth.jwt_refresh_secret:
        keys["jwt_refresh"] = settings.auth.jwt_refresh_secret
    return ServerKeys(**keys)


def _read(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ValueError(f"{path} is not a valid keys file; move it away to generate new keys")
    return data


def _write(path: Path, keys: dict[str, str]) -> None:
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(keys, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
