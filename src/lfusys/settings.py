"""The one typed settings object, read from ``LFUSYS_*`` environment variables.

Every field has a default that serves the embedded mode; a bad value stops start-up with a
:class:`SettingsError` that names the variable.
"""

from __future__ import annotations

import ipaddress
import os
import re
import typing
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import msgspec

ENV_PREFIX = "LFUSYS_"

MiB = 1024**2
GiB = 1024**3
TiB = 1024**4
MAX_CHUNKS = 10_000
"""Most chunks one upload may have (the S3 multipart part limit)."""

LogFormat = Literal["auto", "json", "console"]
LogLevel = Literal["debug", "info", "warning", "error"]


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot run with."""


def memory_available() -> int:
    """Bytes of memory this process may use: the container's limit (cgroup v2) when there is one,
    otherwise the machine's."""
    machine: int = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
    except OSError:
        return machine
    return min(int(limit), machine) if limit.isdigit() else machine


MEMORY_PER_CHUNK_PUT = 16 * MiB
"""Memory set aside per chunk body in flight for the default of ``max_chunk_puts`` (a body holds far
less; the rest is for everything else the process does)."""


def default_max_chunk_puts() -> int:
    """One chunk body in flight per 16 MiB of memory, from 4 to 64."""
    return max(4, min(64, memory_available() // MEMORY_PER_CHUNK_PUT))


Backend = Literal["local", "memory", "aws"]


class CoreSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Where the service listens, how it is reached, how it logs, and which backend it runs on."""

    backend: Backend = "local"
    """``local`` (filesystem + SQLite, the default), ``memory`` (everything in the process, gone at exit)
    or ``aws`` (S3, SQS and DynamoDB, for replicas behind a load balancer)."""
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = "http://127.0.0.1:8000"
    trusted_proxies: tuple[str, ...] = ()
    log_format: LogFormat = "auto"
    log_level: LogLevel = "info"
    max_json_body_bytes: int = 64 * 1024
    web_dir: Path | None = None
    """The built web app (``npm run build`` output); unset means ``web/dist`` of this checkout."""
    metrics_token: str | None = None
    """When set, ``/metrics`` answers only requests with ``Authorization: Bearer <this>``."""

    @property
    def https(self) -> bool:
        """Whether users reach the service over HTTPS (cookies become Secure and ``__Host-``)."""
        return urlsplit(self.public_url).scheme == "https"


def default_argon2_concurrency() -> int:
    """One argon2 computation at a time per core this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class AuthSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Sign-in tokens, their secrets and lifetimes, and password hashing."""

    access_token_ttl: timedelta = timedelta(minutes=15)
    refresh_token_ttl: timedelta = timedelta(days=30)
    refresh_reuse_grace: timedelta = timedelta(seconds=30)
    """A refresh token presented again this soon after its rotation is not a replay (two tabs, a lost response)."""
    # Secrets are generated once and kept by the backend unless given here.
    jwt_access_secret: str | None = None
    jwt_refresh_secret: str | None = None
    argon2_time_cost: int = 3
    argon2_memory_cost_kib: int = 65536
    argon2_parallelism: int = 4
    argon2_concurrency: int = msgspec.field(default_factory=default_argon2_concurrency)
    """argon2 hashes and verifications one process runs at once (each holds a core and
    ``argon2_memory_cost_kib``); sign-ins beyond them wait in line."""
    argon2_queue_wait: timedelta = timedelta(seconds=1)
    """How long a sign-in or registration waits in that line before it is answered 503 with
    ``Retry-After: 1``: under a flood the line stays short instead of growing without end."""


class RateLimitSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Requests counted in fixed windows in the KV (shared by every process when it is Redis); over a
    limit the answer is 429 with ``Retry-After``. 0 turns a limit off."""

    rate_limit_login: int = 10
    """Sign-in attempts per minute from one client address."""
    rate_limit_login_email: int = 10
    """Sign-in attempts per ``rate_limit_login_email_window`` at one email address, from anywhere (so a
    crowd of addresses cannot guess one account's password)."""
    rate_limit_login_email_window: timedelta = timedelta(minutes=15)
    rate_limit_register: int = 10
    """Registrations per minute from one client address."""
    rate_limit_auth: int = 60
    """Other requests to ``/api/v1/auth/*`` (refresh, logout, me, providers) per minute from one client address."""
    rate_limit_api: int = 6000
    """Requests to the rest of the API per minute per signed-in user (per client address without one):
    100 a second, room for 8 chunk streams of 8 MiB chunks at up to 800 MiB/s in all (a LAN upload), plus
    the calls around them."""


class UploadSettings(msgspec.Struct, frozen=True, kw_only=True):
    """What an upload may be: sizes, chunking, quota, lifetimes, and chunks in flight."""

    max_file_size: int = 10 * GiB
    user_quota_bytes: int = 0
    """Total bytes one user may store (finished files plus unfinished sessions); 0 turns it off."""
    upload_ttl: timedelta = timedelta(hours=24)
    default_chunk_size: int = 8 * MiB
    min_chunk_size: int = 5 * MiB
    """Keep at 5 MiB or more where chunks become S3 multipart parts; smaller only for tests."""
    max_chunk_size: int = 1 * GiB
    max_chunk_puts: int = msgspec.field(default_factory=default_max_chunk_puts)
    """Chunk uploads one process takes in at once, from everyone; more get 503 with Retry-After."""
    max_chunk_puts_per_user: int = 16
    """Chunk uploads one user may have in flight at once; more get 429 with Retry-After."""
    download_url_ttl: timedelta = timedelta(hours=1)


class QueueSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The storage-event queue, the worker that consumes it, finalization and the janitor."""

    run_worker: bool = True
    """Whether ``lfusys serve`` also runs the event worker and janitor (``lfusys worker`` runs them alone)."""
    worker_concurrency: int = 4
    queue_max_receives: int = 5
    queue_visibility_timeout: timedelta = timedelta(seconds=30)
    queue_wait_time: timedelta = timedelta(seconds=10)
    finalize_lease: timedelta = timedelta(seconds=60)
    finalize_max_attempts: int = 5
    """Finalization attempts (each failing for a transient reason) before a session is marked failed."""
    janitor_interval: timedelta = timedelta(seconds=60)
    stalled_after: timedelta = timedelta(minutes=5)
    """An idle session whose stored chunks were not all recorded is looked after this long after its last change."""


class LocalSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The embedded backend: everything under one data directory."""

    data_dir: Path = Path("data")

    @property
    def blob_root(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def database_path(self) -> Path:
        return self.data_dir / "lfusys.sqlite3"

    @property
    def secrets_path(self) -> Path:
        return self.data_dir / "secrets.json"


class AwsSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The distributed backend: S3, SQS and DynamoDB (or any endpoint that speaks their APIs).

    The endpoint, region and credentials come from the standard AWS chain (``AWS_ENDPOINT_URL``,
    ``AWS_REGION``/``AWS_DEFAULT_REGION``, environment keys, profile, container or instance role)."""

    aws_prefix: str = "lfusys"
    """Every resource's name starts with it: the bucket, the queues, the tables."""
    aws_path_style: bool = False
    """Address S3 buckets in the path (``endpoint/bucket/key``), as most emulators want."""
    aws_max_attempts: int = 3
    """Attempts per AWS call (botocore's standard retry mode, with backoff)."""
    aws_connect_timeout: timedelta = timedelta(seconds=2)
    aws_read_timeout: timedelta = timedelta(seconds=30)
    aws_copy_parallelism: int = 8
    """Parts copied at once while a file is assembled."""
    aws_uploads_expire_days: int = 7
    """A lifecycle rule deletes chunk objects this many days old, and aborts multipart uploads this old."""
    aws_create_resources: bool = False
    """Create missing resources when the backend opens (as ``lfusys migrate`` does); for tests and trials."""
    aws_min_part_size: int = 5 * MiB
    """The smallest part the S3 endpoint takes in a multipart upload (5 MiB on AWS). Every chunk but the
    last becomes one part, so ``min_chunk_size`` may not be smaller."""


class KVSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The short-lived state every process shares (rate limits, caches, one-time state): Redis, or,
    without it, each process's own memory."""

    redis_url: str | None = None
    """``redis://``, ``rediss://`` or ``unix://``; read from ``LFUSYS_REDIS_URL``, else ``REDIS_URL``."""
    redis_timeout: timedelta = timedelta(milliseconds=250)
    """How long to wait for Redis to connect and to answer; past it, rate limits and caches fail open."""
    redis_prefix: str = "lfusys:"
    """Every key starts with it, so deployments can share one Redis."""
    allow_process_kv: bool = False
    """Run several processes (``--workers``, the aws backend) without Redis, each with its own rate
    limits, caches and one-time state."""


class CacheSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How long cached reads live; ``0`` turns one off. Every change invalidates them at once, so a
    lifetime only bounds how long a lost invalidation (the KV did not answer) may be seen. The caches run
    only where every process shares the KV: with Redis, or in a lone process (no
    ``LFUSYS_ALLOW_PROCESS_KV``, the worker inside it)."""

    cache_files_ttl: timedelta = timedelta(hours=12)
    """The first page of each user's file list."""
    cache_profile_ttl: timedelta = timedelta(minutes=30)
    """Each signed-in user's account, as every request learns who calls."""


class OAuthSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Sign-in with GitHub and Google. A provider is offered when both its client id and secret are set;
    its endpoints can point elsewhere (GitHub Enterprise, a test provider)."""

    github_client_id: str | None = None
    github_client_secret: str | None = None
    github_authorize_url: str = "https://github.com/login/oauth/authorize"
    github_token_url: str = "https://github.com/login/oauth/access_token"  # noqa: S105 - a URL, not a secret
    github_api_url: str = "https://api.github.com"
    google_client_id: str | None = None
    google_client_secret: str | None = None
    google_discovery_url: str = "https://accounts.google.com/.well-known/openid-configuration"
    """The OpenID discovery document: authorize, token, userinfo and JWKS endpoints and the issuer."""

    @property
    def providers(self) -> list[str]:
        """The providers offered for sign-in, in the order the sign-in page shows them."""
        configured = {
            "github": bool(self.github_client_id and self.github_client_secret),
            "google": bool(self.google_client_id and self.google_client_secret),
        }
        return [name for name, ready in configured.items() if ready]


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Runtime configuration, grouped by concern. Field ``x`` of any group is read from ``LFUSYS_X``."""

    core: CoreSettings = msgspec.field(default_factory=CoreSettings)
    auth: AuthSettings = msgspec.field(default_factory=AuthSettings)
    rate_limits: RateLimitSettings = msgspec.field(default_factory=RateLimitSettings)
    uploads: UploadSettings = msgspec.field(default_factory=UploadSettings)
    queue: QueueSettings = msgspec.field(default_factory=QueueSettings)
    local: LocalSettings = msgspec.field(default_factory=LocalSettings)
    aws: AwsSettings = msgspec.field(default_factory=AwsSettings)
    kv: KVSettings = msgspec.field(default_factory=KVSettings)
    cache: CacheSettings = msgspec.field(default_factory=CacheSettings)
    oauth: OAuthSettings = msgspec.field(default_factory=OAuthSettings)


_GROUPS: dict[str, type[msgspec.Struct]] = {field.name: field.type for field in msgspec.structs.fields(Settings)}


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


def _expected(hint: Any) -> str:
    """What a value of type ``hint`` looks like, for error messages."""
    if hint is bool:
        return "expected true or false"
    if hint is int:
        return "expected a whole number"
    choices = typing.get_args(hint)
    if typing.get_origin(hint) is Literal:
        return "expected one of " + ", ".join(str(c) for c in choices)
    return f"expected {getattr(hint, '__name__', hint)}"


def _parse_list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


# Fields whose text needs more than msgspec's string conversion.
_PARSERS: dict[str, Callable[[str], Any]] = {
    "access_token_ttl": parse_duration,
    "refresh_token_ttl": parse_duration,
    "refresh_reuse_grace": parse_duration,
    "argon2_queue_wait": parse_duration,
    "rate_limit_login_email_window": parse_duration,
    "max_json_body_bytes": parse_size,
    "max_file_size": parse_size,
    "user_quota_bytes": parse_size,
    "default_chunk_size": parse_size,
    "min_chunk_size": parse_size,
    "max_chunk_size": parse_size,
    "upload_ttl": parse_duration,
    "queue_visibility_timeout": parse_duration,
    "queue_wait_time": parse_duration,
    "finalize_lease": parse_duration,
    "janitor_interval": parse_duration,
    "stalled_after": parse_duration,
    "download_url_ttl": parse_duration,
    "aws_min_part_size": parse_size,
    "aws_connect_timeout": parse_duration,
    "aws_read_timeout": parse_duration,
    "redis_timeout": parse_duration,
    "cache_files_ttl": parse_duration,
    "cache_profile_ttl": parse_duration,
    "trusted_proxies": _parse_list,
    "data_dir": Path,
    "web_dir": Path,
}

_SHARED_VARIABLES = {"redis_url": "REDIS_URL"}
"""Fields also read from a variable other software uses too, when their ``LFUSYS_`` variable is unset."""


def _is_network(entry: str) -> bool:
    try:
        ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return False
    return True


def _rate_limit_rules(limits: RateLimitSettings) -> list[tuple[str, bool, str]]:
    counts = [name for name in msgspec.structs.asdict(limits) if name != "rate_limit_login_email_window"]
    return [
        *((name, 0 <= getattr(limits, name) <= 1_000_000, "must be 0 (off) or at most 1000000") for name in counts),
        (
            "rate_limit_login_email_window",
            timedelta(seconds=1) <= limits.rate_limit_login_email_window <= timedelta(days=1),
            "must be between 1s and 1d",
        ),
    ]


def _oauth_rules(oauth: OAuthSettings) -> list[tuple[str, bool, str]]:
    """A provider needs both its client id and secret; its endpoints are absolute http(s) URLs."""
    rules: list[tuple[str, bool, str]] = []
    for provider in ("github", "google"):
        client_id, secret = getattr(oauth, f"{provider}_client_id"), getattr(oauth, f"{provider}_client_secret")
        rules.append(
            (f"{provider}_client_secret", bool(client_id) == bool(secret), f"must be set with {provider}_client_id")
        )
    for name in ("github_authorize_url", "github_token_url", "github_api_url", "google_discovery_url"):
        url = urlsplit(getattr(oauth, name))
        rules.append((name, url.scheme in {"http", "https"} and bool(url.netloc), "must be an absolute http(s) URL"))
    return rules


def _check(settings: Settings) -> None:
    """Cross-field and range rules msgspec's types cannot express."""
    core, auth, uploads, queue, aws = settings.core, settings.auth, settings.uploads, settings.queue, settings.aws
    kv = settings.kv
    rules: list[tuple[str, bool, str]] = [
        ("port", 0 <= core.port <= 65535, "must be between 0 and 65535"),
        (
            "public_url",
            urlsplit(core.public_url).scheme in {"http", "https"} and bool(urlsplit(core.public_url).netloc),
            "must be an absolute http:// or https:// URL",
        ),
        (
            "trusted_proxies",
            all(_is_network(entry) for entry in core.trusted_proxies),
            "must list IP addresses or networks, such as 10.0.0.1 or 10.0.0.0/8",
        ),
        ("max_json_body_bytes", core.max_json_body_bytes >= 1024, "must be at least 1KiB"),
        ("access_token_ttl", auth.access_token_ttl >= timedelta(seconds=10), "must be at least 10s"),
        (
            "refresh_token_ttl",
            auth.refresh_token_ttl > auth.access_token_ttl,
            "must be longer than LFUSYS_ACCESS_TOKEN_TTL",
        ),
        (
            "refresh_reuse_grace",
            timedelta(0) <= auth.refresh_reuse_grace <= timedelta(minutes=5),
            "must be between 0 and 5m",
        ),
        (
            "jwt_access_secret",
            auth.jwt_access_secret is None or len(auth.jwt_access_secret) >= 32,
            "must be at least 32 characters",
        ),
        (
            "jwt_refresh_secret",
            auth.jwt_refresh_secret is None or len(auth.jwt_refresh_secret) >= 32,
            "must be at least 32 characters",
        ),
        ("argon2_time_cost", auth.argon2_time_cost >= 1, "must be at least 1"),
        ("argon2_memory_cost_kib", auth.argon2_memory_cost_kib >= 8, "must be at least 8"),
        ("argon2_parallelism", 1 <= auth.argon2_parallelism <= 64, "must be between 1 and 64"),
        ("argon2_concurrency", 1 <= auth.argon2_concurrency <= 256, "must be between 1 and 256"),
        (
            "argon2_queue_wait",
            timedelta(0) <= auth.argon2_queue_wait <= timedelta(minutes=1),
            "must be between 0 and 1m",
        ),
        *_rate_limit_rules(settings.rate_limits),
        ("max_file_size", 1 <= uploads.max_file_size <= 5 * TiB, "must be between 1B and 5TiB"),
        ("user_quota_bytes", uploads.user_quota_bytes >= 0, "must be 0 (off) or a size"),
        ("upload_ttl", uploads.upload_ttl >= timedelta(minutes=1), "must be at least 1m"),
        ("min_chunk_size", uploads.min_chunk_size >= 1, "must be at least 1B"),
        (
            "max_chunk_size",
            uploads.max_chunk_size >= uploads.min_chunk_size
            and uploads.max_chunk_size * MAX_CHUNKS >= uploads.max_file_size
            and uploads.max_chunk_size <= 5 * GiB,
            f"must be at least LFUSYS_MIN_CHUNK_SIZE, at most 5GiB, and large enough that "
            f"LFUSYS_MAX_FILE_SIZE fits in {MAX_CHUNKS} chunks",
        ),
        (
            "default_chunk_size",
            uploads.min_chunk_size <= uploads.default_chunk_size <= uploads.max_chunk_size,
            "must be between LFUSYS_MIN_CHUNK_SIZE and LFUSYS_MAX_CHUNK_SIZE",
        ),
        ("max_chunk_puts", 2 <= uploads.max_chunk_puts <= 4096, "must be between 2 and 4096"),
        ("max_chunk_puts_per_user", 1 <= uploads.max_chunk_puts_per_user <= 1024, "must be between 1 and 1024"),
        ("download_url_ttl", uploads.download_url_ttl >= timedelta(seconds=10), "must be at least 10s"),
        *_oauth_rules(settings.oauth),
        (
            "run_worker",
            queue.run_worker or core.backend != "memory",
            "must be true with LFUSYS_BACKEND=memory (no other process can reach its queue)",
        ),
        ("worker_concurrency", 1 <= queue.worker_concurrency <= 64, "must be between 1 and 64"),
        ("queue_max_receives", 1 <= queue.queue_max_receives <= 100, "must be between 1 and 100"),
        ("queue_visibility_timeout", queue.queue_visibility_timeout >= timedelta(seconds=1), "must be at least 1s"),
        ("queue_wait_time", timedelta(0) < queue.queue_wait_time <= timedelta(seconds=20), "must be 1ms to 20s"),
        ("finalize_lease", queue.finalize_lease >= timedelta(seconds=1), "must be at least 1s"),
        ("finalize_max_attempts", 1 <= queue.finalize_max_attempts <= 100, "must be between 1 and 100"),
        ("janitor_interval", queue.janitor_interval >= timedelta(milliseconds=10), "must be at least 10ms"),
        ("stalled_after", queue.stalled_after >= timedelta(0), "must not be negative"),
        (
            "aws_prefix",
            re.fullmatch(r"[a-z0-9][a-z0-9-]{1,38}[a-z0-9]", aws.aws_prefix) is not None,
            "must be 3 to 40 lower-case letters, digits or hyphens, starting and ending with a letter or digit",
        ),
        ("aws_max_attempts", 1 <= aws.aws_max_attempts <= 10, "must be between 1 and 10"),
        ("aws_connect_timeout", aws.aws_connect_timeout >= timedelta(milliseconds=100), "must be at least 100ms"),
        ("aws_read_timeout", aws.aws_read_timeout >= timedelta(seconds=1), "must be at least 1s"),
        ("aws_copy_parallelism", 1 <= aws.aws_copy_parallelism <= 64, "must be between 1 and 64"),
        ("aws_uploads_expire_days", 1 <= aws.aws_uploads_expire_days <= 365, "must be between 1 and 365"),
        ("aws_min_part_size", aws.aws_min_part_size >= 1, "must be at least 1B"),
        (
            "min_chunk_size",
            core.backend != "aws" or uploads.min_chunk_size >= aws.aws_min_part_size,
            "must be at least LFUSYS_AWS_MIN_PART_SIZE on the aws backend (S3 refuses smaller multipart parts)",
        ),
        (
            "redis_url",
            kv.redis_url is None or _is_redis_url(kv.redis_url),
            "(or REDIS_URL) must be a redis://, rediss:// or unix:// URL",
        ),
        (
            "redis_url",
            kv.redis_url is not None or kv.allow_process_kv or core.backend != "aws",
            "(or REDIS_URL) must be set with LFUSYS_BACKEND=aws, or LFUSYS_ALLOW_PROCESS_KV=true to accept that "
            "rate limits, caches and one-time state are per process",
        ),
        (
            "redis_timeout",
            timedelta(milliseconds=10) <= kv.redis_timeout <= timedelta(seconds=10),
            "must be between 10ms and 10s",
        ),
        (
            "redis_prefix",
            len(kv.redis_prefix) <= 64 and not any(c.isspace() for c in kv.redis_prefix),
            "must be at most 64 characters, without spaces",
        ),
    ]
    for field, ok, message in rules:
        if not ok:
            raise SettingsError(f"{ENV_PREFIX}{field.upper()} {message}")


def _is_redis_url(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return bool(parts.path)
    return parts.scheme in {"redis", "rediss"} and bool(parts.hostname)


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build :class:`Settings` from the environment (``os.environ`` by default).

    ``overrides`` take precedence over the environment; they are given by field name (whatever its
    group, e.g. ``stalled_after=timedelta(0)``) as Python values. Tests and the CLI use them.
    """
    environ = os.environ if environ is None else environ
    groups: dict[str, Any] = {}
    for group_name, group_type in _GROUPS.items():
        values: dict[str, Any] = {}
        for field in msgspec.structs.fields(group_type):
            name, hint = field.name, field.type
            if name in overrides:
                values[name] = overrides.pop(name)
                continue
            variable = f"{ENV_PREFIX}{name.upper()}"
            raw = environ.get(variable)
            if raw is None and name in _SHARED_VARIABLES:
                variable = _SHARED_VARIABLES[name]
                raw = environ.get(variable)
            # An empty value leaves an optional text unset (an empty LFUSYS_REDIS_URL also hides REDIS_URL).
            if raw is None or (raw.strip() == "" and (name.startswith("jwt_") or name == "redis_url")):
                continue
            try:
                parser = _PARSERS.get(name)
                values[name] = parser(raw) if parser else msgspec.convert(raw, hint, strict=False)
            except msgspec.ValidationError:
                raise SettingsError(f"{variable}={raw!r} is invalid: {_expected(hint)}") from None
            except ValueError as exc:
                raise SettingsError(f"{variable}={raw!r} is invalid: {exc}") from None
        groups[group_name] = group_type(**values)
    if overrides:
        raise TypeError(f"unknown settings: {', '.join(sorted(overrides))}")
    settings = Settings(**groups)
    _check(settings)
    return settings
