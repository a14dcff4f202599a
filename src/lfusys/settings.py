"""The one typed settings object, read from ``LFUSYS_*`` environment variables.

Every field has a default that serves the embedded mode; a bad value stops start-up with a
:class:`SettingsError` that names the variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import msgspec

ENV_PREFIX = "LFUSYS_"

LogFormat = Literal["auto", "json", "console"]
LogLevel = Literal["debug", "info", "warning", "error"]


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot run with."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Runtime configuration. Field ``x`` is read from ``LFUSYS_X``."""

    data_dir: Path = Path("data")
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = "http://127.0.0.1:8000"
    trusted_proxies: tuple[str, ...] = ()
    log_format: LogFormat = "auto"
    log_level: LogLevel = "info"
    access_token_ttl: timedelta = timedelta(minutes=15)
    refresh_token_ttl: timedelta = timedelta(days=30)
    # Secrets are generated once and kept in the data directory unless given here.
    jwt_access_secret: str | None = None
    jwt_refresh_secret: str | None = None
    argon2_time_cost: int = 3
    argon2_memory_cost_kib: int = 65536
    argon2_parallelism: int = 4
    max_json_body_bytes: int = 64 * 1024

    @property
    def https(self) -> bool:
        """Whether users reach the service over HTTPS (cookies become Secure and ``__Host-``)."""
        return urlsplit(self.public_url).scheme == "https"

    @property
    def database_path(self) -> Path:
        return self.data_dir / "lfusys.sqlite3"

    @property
    def secrets_path(self) -> Path:
        return self.data_dir / "secrets.json"


# --- parsing -------------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
_SIZE = re.compile(r"^\s*(\d+)\s*(B|KB|KiB|MB|MiB|GB|GiB|TB|TiB)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
    "tb": 1000**4,
    "tib": 1024**4,
}


def parse_duration(text: str) -> timedelta:
    """``"90"`` (seconds), ``"500ms"``, ``"15m"``, ``"24h"``, ``"30d"``."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError("expected a duration such as 90, 15m, 24h or 30d")
    amount, unit = int(match.group(1)), match.group(2)
    return timedelta(seconds=amount * _DURATION_UNITS[unit])


def parse_size(text: str) -> int:
    """``"1048576"`` (bytes), ``"8MiB"``, ``"10GiB"``, ``"5TiB"``, ``"500MB"``."""
    match = _SIZE.match(text)
    if match is None:
        raise ValueError("expected a size in bytes such as 1048576, 8MiB or 10GiB")
    unit = (match.group(2) or "b").lower()
    return int(match.group(1)) * _SIZE_UNITS[unit]


def _parse_list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


# Fields whose text needs more than msgspec's string conversion.
_PARSERS: dict[str, Callable[[str], Any]] = {
    "access_token_ttl": parse_duration,
    "refresh_token_ttl": parse_duration,
    "max_json_body_bytes": parse_size,
    "trusted_proxies": _parse_list,
    "data_dir": Path,
}


def _check(settings: Settings) -> None:
    """Cross-field and range rules msgspec's types cannot express."""
    rules: list[tuple[str, bool, str]] = [
        ("port", 0 <= settings.port <= 65535, "must be between 0 and 65535"),
        (
            "public_url",
            urlsplit(settings.public_url).scheme in {"http", "https"}
            and bool(urlsplit(settings.public_url).netloc),
            "must be an absolute http:// or https:// URL",
        ),
        ("access_token_ttl", settings.access_token_ttl >= timedelta(seconds=10), "must be at least 10s"),
        (
            "refresh_token_ttl",
            settings.refresh_token_ttl > settings.access_token_ttl,
            "must be longer than LFUSYS_ACCESS_TOKEN_TTL",
        ),
        (
            "jwt_access_secret",
            settings.jwt_access_secret is None or len(settings.jwt_access_secret) >= 32,
            "must be at least 32 characters",
        ),
        (
            "jwt_refresh_secret",
            settings.jwt_refresh_secret is None or len(settings.jwt_refresh_secret) >= 32,
            "must be at least 32 characters",
        ),
        ("argon2_time_cost", settings.argon2_time_cost >= 1, "must be at least 1"),
        ("argon2_memory_cost_kib", settings.argon2_memory_cost_kib >= 8, "must be at least 8"),
        ("argon2_parallelism", 1 <= settings.argon2_parallelism <= 64, "must be between 1 and 64"),
        ("max_json_body_bytes", settings.max_json_body_bytes >= 1024, "must be at least 1KiB"),
    ]
    for field, ok, message in rules:
        if not ok:
            raise SettingsError(f"{ENV_PREFIX}{field.upper()} {message}")


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build :class:`Settings` from the environment (``os.environ`` by default).

    ``overrides`` take precedence over the environment and are given as Python values;
    tests and the CLI use them.
    """
    environ = os.environ if environ is None else environ
    hints = {field.name: field.type for field in msgspec.structs.fields(Settings)}
    values: dict[str, Any] = {}
    for name, hint in hints.items():
        variable = f"{ENV_PREFIX}{name.upper()}"
        if name in overrides:
            values[name] = overrides.pop(name)
            continue
        raw = environ.get(variable)
        if raw is None:
            continue
        try:
            if raw.strip() == "" and name.startswith("jwt_"):
                continue
            parser = _PARSERS.get(name)
            values[name] = parser(raw) if parser else msgspec.convert(raw, hint, strict=False)
        except (ValueError, msgspec.ValidationError) as exc:
            raise SettingsError(f"{variable}={raw!r} is invalid: {exc}") from None
    if overrides:
        raise TypeError(f"unknown settings: {', '.join(sorted(overrides))}")
    settings = Settings(**values)
    _check(settings)
    return settings
