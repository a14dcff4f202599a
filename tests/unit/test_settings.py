"""Settings from LFUSYS_* variables: defaults, formats, and a clear error naming any bad variable."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from lfusys import settings as settings_module
from lfusys.settings import MiB, SettingsError, load_settings, parse_duration, parse_size


def test_no_configuration_gives_the_embedded_defaults() -> None:
    settings = load_settings({})

    assert settings.local.data_dir == Path("data")
    assert (settings.core.host, settings.core.port) == ("127.0.0.1", 8000)
    assert settings.core.public_url == "http://127.0.0.1:8000"
    assert not settings.core.https
    assert settings.auth.access_token_ttl == timedelta(minutes=15)
    assert settings.auth.refresh_token_ttl == timedelta(days=30)
    assert settings.core.trusted_proxies == ()


def test_values_are_read_from_lfusys_variables() -> None:
    settings = load_settings(
        {
            "LFUSYS_DATA_DIR": "/srv/lfusys",
            "LFUSYS_PORT": "9000",
            "LFUSYS_PUBLIC_URL": "https://files.example.org",
            "LFUSYS_TRUSTED_PROXIES": "10.0.0.1, 10.0.0.2",
            "LFUSYS_ACCESS_TOKEN_TTL": "5m",
            "LFUSYS_REFRESH_TOKEN_TTL": "7d",
            "LFUSYS_LOG_FORMAT": "console",
            "LFUSYS_MAX_JSON_BODY_BYTES": "1MiB",
            "UNRELATED": "ignored",
        }
    )

    assert settings.local.data_dir == Path("/srv/lfusys")
    assert settings.core.port == 9000
    assert settings.core.https
    assert settings.core.trusted_proxies == ("10.0.0.1", "10.0.0.2")
    assert settings.auth.access_token_ttl == timedelta(minutes=5)
    assert settings.auth.refresh_token_ttl == timedelta(days=7)
    assert settings.core.log_format == "console"
    assert settings.core.max_json_body_bytes == 1024 * 1024


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LFUSYS_PORT", "eighty"),
        ("LFUSYS_PORT", "70000"),
        ("LFUSYS_PORT", "-1"),
        ("LFUSYS_PUBLIC_URL", "files.example.org"),
        ("LFUSYS_PUBLIC_URL", "ftp://files.example.org"),
        ("LFUSYS_LOG_FORMAT", "xml"),
        ("LFUSYS_LOG_LEVEL", "loud"),
        ("LFUSYS_ACCESS_TOKEN_TTL", "soon"),
        ("LFUSYS_ACCESS_TOKEN_TTL", "1s"),
        ("LFUSYS_REFRESH_TOKEN_TTL", "1m"),
        ("LFUSYS_JWT_ACCESS_SECRET", "too-short"),
        ("LFUSYS_JWT_REFRESH_SECRET", "too-short"),
        ("LFUSYS_ARGON2_TIME_COST", "0"),
        ("LFUSYS_ARGON2_MEMORY_COST_KIB", "1"),
        ("LFUSYS_ARGON2_PARALLELISM", "1000"),
        ("LFUSYS_ARGON2_CONCURRENCY", "0"),
        ("LFUSYS_ARGON2_QUEUE_WAIT", "2m"),
        ("LFUSYS_TRUSTED_PROXIES", "10.0.0.1, proxy.internal"),
        ("LFUSYS_TRUSTED_PROXIES", "10.0.0.0/33"),
        ("LFUSYS_RATE_LIMIT_LOGIN", "-1"),
        ("LFUSYS_RATE_LIMIT_LOGIN", "ten"),
        ("LFUSYS_RATE_LIMIT_LOGIN_EMAIL", "-5"),
        ("LFUSYS_RATE_LIMIT_LOGIN_EMAIL_WINDOW", "0"),
        ("LFUSYS_RATE_LIMIT_LOGIN_EMAIL_WINDOW", "2d"),
        ("LFUSYS_RATE_LIMIT_REGISTER", "-1"),
        ("LFUSYS_RATE_LIMIT_AUTH", "2000000"),
        ("LFUSYS_RATE_LIMIT_API", "lots"),
        ("LFUSYS_MAX_JSON_BODY_BYTES", "12 parsecs"),
        ("LFUSYS_MAX_JSON_BODY_BYTES", "10"),
        ("LFUSYS_MAX_CHUNK_PUTS", "1"),
        ("LFUSYS_MAX_CHUNK_PUTS", "5000"),
        ("LFUSYS_MAX_CHUNK_PUTS", "many"),
        ("LFUSYS_MAX_CHUNK_PUTS_PER_USER", "0"),
        ("LFUSYS_BACKEND", "s3"),
        ("LFUSYS_AWS_PATH_STYLE", "sometimes"),
        ("LFUSYS_AWS_MAX_ATTEMPTS", "0"),
        ("LFUSYS_AWS_MAX_ATTEMPTS", "11"),
        ("LFUSYS_AWS_CONNECT_TIMEOUT", "10ms"),
        ("LFUSYS_AWS_READ_TIMEOUT", "500ms"),
        ("LFUSYS_AWS_READ_TIMEOUT", "soon"),
        ("LFUSYS_AWS_COPY_PARALLELISM", "0"),
        ("LFUSYS_AWS_COPY_PARALLELISM", "65"),
        ("LFUSYS_AWS_UPLOADS_EXPIRE_DAYS", "0"),
        ("LFUSYS_AWS_UPLOADS_EXPIRE_DAYS", "366"),
        ("LFUSYS_AWS_MIN_PART_SIZE", "0"),
        ("LFUSYS_AWS_MIN_PART_SIZE", "big"),
        ("LFUSYS_REDIS_URL", "http://redis:6379"),
        ("LFUSYS_REDIS_URL", "redis://"),
        ("LFUSYS_REDIS_TIMEOUT", "1ms"),
        ("LFUSYS_REDIS_TIMEOUT", "1m"),
        ("LFUSYS_REDIS_PREFIX", "my app:"),
        ("LFUSYS_ALLOW_PROCESS_KV", "perhaps"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        load_settings({variable: value})


def test_rate_limits_and_the_argon2_bound_have_defaults_and_are_read_from_their_variables() -> None:
    defaults = load_settings({})
    limits = defaults.rate_limits
    assert (limits.rate_limit_login, limits.rate_limit_register, limits.rate_limit_auth) == (10, 10, 60)
    assert (limits.rate_limit_login_email, limits.rate_limit_login_email_window) == (10, timedelta(minutes=15))
    assert limits.rate_limit_api == 6000
    assert defaults.auth.argon2_concurrency == len(os.sched_getaffinity(0))
    assert defaults.auth.argon2_queue_wait == timedelta(seconds=1)

    settings = load_settings(
        {
            "LFUSYS_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.1, fd00::/8",
            "LFUSYS_RATE_LIMIT_LOGIN": "0",
            "LFUSYS_RATE_LIMIT_LOGIN_EMAIL": "5",
            "LFUSYS_RATE_LIMIT_LOGIN_EMAIL_WINDOW": "1h",
            "LFUSYS_RATE_LIMIT_API": "6000",
            "LFUSYS_ARGON2_CONCURRENCY": "3",
            "LFUSYS_ARGON2_QUEUE_WAIT": "250ms",
        }
    )
    assert settings.core.trusted_proxies == ("10.0.0.0/8", "192.0.2.1", "fd00::/8")
    assert settings.rate_limits.rate_limit_login == 0
    assert settings.rate_limits.rate_limit_login_email == 5
    assert settings.rate_limits.rate_limit_login_email_window == timedelta(hours=1)
    assert settings.rate_limits.rate_limit_api == 6000
    assert (settings.auth.argon2_concurrency, settings.auth.argon2_queue_wait) == (3, timedelta(milliseconds=250))


def test_an_empty_secret_means_generate_one() -> None:
    assert load_settings({"LFUSYS_JWT_ACCESS_SECRET": ""}).auth.jwt_access_secret is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90", timedelta(seconds=90)),
        ("500ms", timedelta(milliseconds=500)),
        ("15m", timedelta(minutes=15)),
        ("24h", timedelta(hours=24)),
        ("30d", timedelta(days=30)),
        (" 2 h ", timedelta(hours=2)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "h", "1.5h", "-1m", "1w", "1 hour"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1048576", 1048576),
        ("8MiB", 8 * 2**20),
        ("10GiB", 10 * 2**30),
        ("5TiB", 5 * 2**40),
        ("500MB", 500 * 10**6),
        ("1kib", 1024),
    ],
)
def test_sizes(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "MiB", "1.5GiB", "-1", "10 GB of data"])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(ValueError, match="size"):
        parse_size(text)


def test_unknown_overrides_are_a_programming_error() -> None:
    with pytest.raises(TypeError, match="colour"):
        load_settings({}, colour="blue")


def test_the_memory_backend_runs_its_worker_in_the_server() -> None:
    with pytest.raises(SettingsError, match="LFUSYS_RUN_WORKER"):
        load_settings({"LFUSYS_BACKEND": "memory", "LFUSYS_RUN_WORKER": "false"})


@pytest.mark.parametrize(
    ("memory", "expected"),
    [(32 * MiB, 4), (256 * MiB, 16), (1024 * MiB, 64), (24 * 1024 * MiB, 64)],
)
def test_chunk_bodies_in_flight_are_sized_from_memory(
    memory: int, expected: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings_module, "memory_available", lambda: memory)

    assert load_settings({}).uploads.max_chunk_puts == expected
    assert load_settings({"LFUSYS_MAX_CHUNK_PUTS": "200"}).uploads.max_chunk_puts == 200


def test_the_memory_available_is_at_most_the_machines() -> None:
    machine = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")

    assert 0 < settings_module.memory_available() <= machine


def test_the_aws_settings_are_read_from_lfusys_aws_variables() -> None:
    settings = load_settings(
        {
            "LFUSYS_BACKEND": "aws",
            "LFUSYS_REDIS_URL": "redis://redis.internal:6379/0",
            "LFUSYS_AWS_PREFIX": "files-prod",
            "LFUSYS_AWS_PATH_STYLE": "true",
            "LFUSYS_AWS_MAX_ATTEMPTS": "5",
            "LFUSYS_AWS_CONNECT_TIMEOUT": "500ms",
            "LFUSYS_AWS_READ_TIMEOUT": "1m",
            "LFUSYS_AWS_COPY_PARALLELISM": "16",
            "LFUSYS_AWS_UPLOADS_EXPIRE_DAYS": "3",
        }
    )

    aws = settings.aws
    assert settings.core.backend == "aws"
    assert (aws.aws_prefix, aws.aws_path_style, aws.aws_max_attempts) == ("files-prod", True, 5)
    assert (aws.aws_connect_timeout, aws.aws_read_timeout) == (timedelta(milliseconds=500), timedelta(minutes=1))
    assert (aws.aws_copy_parallelism, aws.aws_uploads_expire_days) == (16, 3)
    assert (aws.aws_create_resources, aws.aws_min_part_size) == (False, 5 * MiB)


def test_chunks_smaller_than_s3_parts_are_refused_on_the_aws_backend_only() -> None:
    small = {"LFUSYS_MIN_CHUNK_SIZE": "1MiB", "LFUSYS_DEFAULT_CHUNK_SIZE": "4MiB", "LFUSYS_ALLOW_PROCESS_KV": "true"}

    with pytest.raises(SettingsError, match="LFUSYS_MIN_CHUNK_SIZE"):
        load_settings({"LFUSYS_BACKEND": "aws", **small})
    assert load_settings({"LFUSYS_BACKEND": "local", **small}).uploads.min_chunk_size == MiB
    # An endpoint that takes smaller parts says so.
    lenient = load_settings({"LFUSYS_BACKEND": "aws", "LFUSYS_AWS_MIN_PART_SIZE": "1MiB", **small})
    assert lenient.uploads.min_chunk_size == MiB


def test_the_kv_settings_default_to_each_process_its_own() -> None:
    kv = load_settings({}).kv

    assert kv.redis_url is None
    assert (kv.redis_timeout, kv.redis_prefix, kv.allow_process_kv) == (timedelta(milliseconds=250), "lfusys:", False)


def test_redis_is_found_through_redis_url_and_lfusys_redis_url_wins() -> None:
    assert load_settings({"REDIS_URL": "redis://shared:6379/1"}).kv.redis_url == "redis://shared:6379/1"
    both = {"REDIS_URL": "redis://shared:6379/1", "LFUSYS_REDIS_URL": "rediss://own:6380/0"}
    assert load_settings(both).kv.redis_url == "rediss://own:6380/0"
    assert load_settings({"LFUSYS_REDIS_URL": "unix:///run/redis.sock"}).kv.redis_url == "unix:///run/redis.sock"
    # Empty is unset, and an empty LFUSYS_REDIS_URL turns a shared REDIS_URL off.
    assert load_settings({"REDIS_URL": ""}).kv.redis_url is None
    assert load_settings({"REDIS_URL": "redis://shared:6379/1", "LFUSYS_REDIS_URL": ""}).kv.redis_url is None
    with pytest.raises(SettingsError, match="REDIS_URL"):
        load_settings({"REDIS_URL": "memcached://shared:11211"})


def test_the_kv_settings_are_read_from_lfusys_variables() -> None:
    kv = load_settings(
        {"LFUSYS_REDIS_TIMEOUT": "100ms", "LFUSYS_REDIS_PREFIX": "files-prod:", "LFUSYS_ALLOW_PROCESS_KV": "true"}
    ).kv

    assert (kv.redis_timeout, kv.redis_prefix, kv.allow_process_kv) == (
        timedelta(milliseconds=100),
        "files-prod:",
        True,
    )


def test_the_aws_backend_needs_redis_unless_told_that_each_process_may_keep_its_own() -> None:
    with pytest.raises(SettingsError, match=r"REDIS_URL.*LFUSYS_ALLOW_PROCESS_KV=true"):
        load_settings({"LFUSYS_BACKEND": "aws"})

    assert load_settings({"LFUSYS_BACKEND": "aws", "REDIS_URL": "redis://redis:6379/0"}).core.backend == "aws"
    assert load_settings({"LFUSYS_BACKEND": "aws", "LFUSYS_ALLOW_PROCESS_KV": "true"}).core.backend == "aws"


def test_an_oauth_provider_is_offered_only_with_both_its_client_id_and_secret() -> None:
    none = load_settings({})
    github = load_settings({"LFUSYS_GITHUB_CLIENT_ID": "id", "LFUSYS_GITHUB_CLIENT_SECRET": "secret"})
    both = load_settings(
        {
            "LFUSYS_GITHUB_CLIENT_ID": "id",
            "LFUSYS_GITHUB_CLIENT_SECRET": "secret",
            "LFUSYS_GOOGLE_CLIENT_ID": "id",
            "LFUSYS_GOOGLE_CLIENT_SECRET": "secret",
            "LFUSYS_GITHUB_API_URL": "https://github.example.org/api/v3",
        }
    )

    assert (none.oauth.providers, github.oauth.providers, both.oauth.providers) == (
        [],
        ["github"],
        ["github", "google"],
    )
    assert none.oauth.github_authorize_url == "https://github.com/login/oauth/authorize"
    assert both.oauth.github_api_url == "https://github.example.org/api/v3"


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"LFUSYS_GITHUB_CLIENT_ID": "id"}, "LFUSYS_GITHUB_CLIENT_SECRET"),
        ({"LFUSYS_GOOGLE_CLIENT_SECRET": "secret"}, "LFUSYS_GOOGLE_CLIENT_SECRET"),
        ({"LFUSYS_GITHUB_TOKEN_URL": "github.com/token"}, "LFUSYS_GITHUB_TOKEN_URL"),
        ({"LFUSYS_GOOGLE_DISCOVERY_URL": "ftp://example.org/x"}, "LFUSYS_GOOGLE_DISCOVERY_URL"),
        ({"LFUSYS_GITHUB_API_URL": "https://"}, "LFUSYS_GITHUB_API_URL"),
    ],
)
def test_a_half_configured_provider_or_a_bad_endpoint_stops_start_up(variables: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load_settings(variables)
