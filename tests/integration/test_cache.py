"""The cached first page of each file list and the cached profile behind every request (/auth/me), seen
through the API on every backend: what is read from the store, what invalidates, who sees what, and what
happens when the KV does not answer. On aws the caches run on Redis (without it, nothing is cached: a
replica's own KV cannot invalidate another's)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from lfusys.auth.service import PROFILES
from lfusys.cache import generation_key, value_key
from lfusys.files.cache import FIRST_PAGES
from lfusys.files.records import FileRecord
from lfusys.storage.ports import KV, KVUnavailable
from tests.conftest import AppFactory
from tests.redis_server import redis_overrides
from tests.support import (
    API,
    BASE_URL,
    ROOMY_RATE_LIMITS,
    SMALL_CHUNKS,
    AppClient,
    FakeClock,
    another_user,
    csrf_headers,
    login,
    services_of,
    signed_in,
    upload_file,
)

Client = AppClient
FILES_TTL = timedelta(hours=12)
PROFILE_TTL = timedelta(minutes=30)


def cache_settings(backend_name: str, data_dir: Path, **overrides: Any) -> dict[str, Any]:
    return {
        **SMALL_CHUNKS,
        **ROOMY_RATE_LIMITS,
        **(redis_overrides(data_dir) if backend_name == "aws" else {}),
        **overrides,
    }


@pytest.fixture
async def client(app_factory: AppFactory, backend_name: str, data_dir: Path) -> AsyncIterator[Client]:
    async with AppClient(app_factory(**cache_settings(backend_name, data_dir)), base_url=BASE_URL) as c:
        yield c


@pytest.fixture
async def user(client: Client) -> dict[str, Any]:
    return await signed_in(client)


class Counted:
    """Calls of one store method, counted (the method still runs); a call can be held after it has read
    from the store, until ``release`` is set."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, store: object, method: str) -> None:
        self.calls = 0
        self.fetched = asyncio.Event()
        self.release: asyncio.Event | None = None
        original = getattr(store, method)

        async def counted(*args: Any) -> Any:
            self.calls += 1
            result = await original(*args)
            self.fetched.set()
            if self.release is not None:
                await self.release.wait()
            return result

        monkeypatch.setattr(store, method, counted)


def first_page_reads(client: Client, monkeypatch: pytest.MonkeyPatch) -> Counted:
    return Counted(monkeypatch, services_of(client).backend.files, "list_by_owner")


def profile_reads(client: Client, monkeypatch: pytest.MonkeyPatch) -> Counted:
    return Counted(monkeypatch, services_of(client).backend.users, "get")


async def listed(client: Client, **params: Any) -> list[str]:
    response = await client.get(f"{API}/files", params=params)
    assert response.status_code == 200, response.text
    return [file["id"] for file in response.json()["files"]]


async def upload(client: Client, name: str = "data.bin") -> str:
    file_id: str = (await upload_file(client, name.encode() * 10, name=name))["file_id"]
    return file_id


async def delete(client: Client, file_id: str) -> None:
    response = await client.delete(f"{API}/files/{file_id}", headers=await csrf_headers(client))
    assert response.status_code == 204, response.text


async def cached_key(kv: KV, kind: str, owner_id: str, part: str) -> str:
    """Where the owner's value ``part`` is cached now (its generation exists once it has been read)."""
    generation = await kv.get(generation_key(kind, owner_id))
    assert generation is not None
    return value_key(kind, owner_id, generation.decode(), part)


# --- the first page of the file list -------------------------------------------------------------


async def test_the_first_page_is_read_from_the_store_once_then_from_the_cache(
    client: Client, user: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    older, newer = await upload(client, "a"), await upload(client, "b")
    reads = first_page_reads(client, monkeypatch)

    assert await listed(client) == await listed(client) == [newer, older]
    assert reads.calls == 1
    assert await listed(client, limit=1) == await listed(client, limit=1) == [newer]
    assert reads.calls == 2  # each page size is cached on its own
    cursor = (await client.get(f"{API}/files", params={"limit": 1})).json()["next_cursor"]
    assert await listed(client, limit=1, cursor=cursor) == await listed(client, limit=1, cursor=cursor) == [older]
    assert reads.calls == 4  # later pages always come from the store


async def test_a_finished_upload_is_listed_at_once(client: Client, user: dict[str, Any]) -> None:
    assert await listed(client) == []  # cached empty

    file_id = await upload(client)

    assert await listed(client) == [file_id]


async def test_a_deleted_file_leaves_the_list_at_once(client: Client, user: dict[str, Any]) -> None:
    kept, gone = await upload(client, "kept"), await upload(client, "gone")
    assert await listed(client) == [gone, kept]

    await delete(client, gone)

    assert await listed(client) == [kept]


async def test_a_list_read_while_a_file_is_deleted_never_brings_it_back(
    client: Client, user: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The classic race, held open: a list has read the page from the store but not yet cached it when the
    file is deleted; it caches the old page afterwards. The old page must never be served again."""
    file_id = await upload(client)
    reads = first_page_reads(client, monkeypatch)
    reads.release = asyncio.Event()
    held = asyncio.create_task(client.get(f"{API}/files"))
    await reads.fetched.wait()

    await delete(client, file_id)
    reads.release.set()
    reads.release = None

    assert [f["id"] for f in (await held).json()["files"]] == [file_id]  # read before the delete
    assert await listed(client) == []
    assert await listed(client) == []
    assert reads.calls == 2  # the stale page was not used; the fresh one is cached


async def test_fifty_concurrent_requests_for_a_cold_list_read_the_store_once(
    client: Client, user: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    file_id = await upload(client)
    reads = first_page_reads(client, monkeypatch)
    reads.release = asyncio.Event()

    requests = [asyncio.create_task(client.get(f"{API}/files")) for _ in range(50)]
    await reads.fetched.wait()
    await asyncio.sleep(0.3)  # every request reaches the cache meanwhile
    reads.release.set()
    responses = await asyncio.gather(*requests)

    assert [r.status_code for r in responses] == [200] * 50
    assert all(r.json()["files"][0]["id"] == file_id for r in responses)
    assert reads.calls == 1


async def test_a_user_never_gets_another_users_cached_list(client: Client, user: dict[str, Any]) -> None:
    ada_file = await upload(client)
    eve = await another_user(client)
    eve_id = (await eve.get(f"{API}/auth/me")).json()["id"]
    kv = services_of(client).kv
    assert await listed(client) == [ada_file]
    assert await listed(eve) == []
    ada_entry = await kv.get(await cached_key(kv, FIRST_PAGES, user["id"], "20"))
    assert ada_entry is not None
    eve_key = await cached_key(kv, FIRST_PAGES, eve_id, "20")

    # Ada's page planted under Eve's key, as it was cached, and with Eve named as its owner.
    await kv.set(eve_key, ada_entry, FILES_TTL)
    assert await listed(eve) == []
    forged = json.loads(ada_entry)
    forged[0] = eve_id
    await kv.set(eve_key, json.dumps(forged).encode(), FILES_TTL)
    assert await listed(eve) == []
    assert await listed(client) == [ada_file]


@pytest.mark.only_on("local", "memory", why="the test's clock moves the in-process KV's time; Redis keeps its own")
async def test_a_cached_list_lives_at_most_its_lifetime(client: Client, user: dict[str, Any], clock: FakeClock) -> None:
    assert await listed(client) == []
    # A file row written behind the cache's back: what a lost invalidation would leave.
    record = FileRecord(
        id="f" * 32,
        owner_id=user["id"],
        upload_id="u" * 32,
        name="late.bin",
        type="application/octet-stream",
        size=1,
        checksum="0" * 64,
        created_at=clock(),
    )
    await services_of(client).backend.files.create_if_absent(record)

    clock.advance(FILES_TTL * 0.89)  # within the lifetime, whatever its jitter
    assert (await login(client, user["email"])).status_code == 200  # the access token has expired
    assert await listed(client) == []
    clock.advance(FILES_TTL * 0.11 + timedelta(seconds=1))
    assert (await login(client, user["email"])).status_code == 200
    assert await listed(client) == [record.id]


@pytest.mark.only_on("local", "aws", why="the memory backend's worker always runs in its one server process")
async def test_nothing_is_cached_when_another_process_may_change_the_files(
    app_factory: AppFactory, backend_name: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A separate worker, and no Redis: its finalizations could not invalidate this process's cache."""
    overrides = {**SMALL_CHUNKS, **ROOMY_RATE_LIMITS, "run_worker": False}
    async with AppClient(app_factory(**overrides), base_url=BASE_URL) as client:
        await signed_in(client)
        reads = first_page_reads(client, monkeypatch)
        profiles = profile_reads(client, monkeypatch)

        await listed(client)
        await listed(client)

        assert reads.calls == 2
        assert profiles.calls == 2


async def test_a_lifetime_of_zero_turns_the_list_cache_off(
    app_factory: AppFactory, backend_name: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    overrides = cache_settings(backend_name, data_dir, cache_files_ttl=timedelta(0))
    async with AppClient(app_factory(**overrides), base_url=BASE_URL) as client:
        await signed_in(client)
        reads = first_page_reads(client, monkeypatch)

        await listed(client)
        await listed(client)

        assert reads.calls == 2


# --- the profile behind /auth/me -----------------------------------------------------------------


async def test_the_profile_is_read_from_the_store_once_then_from_the_cache(
    client: Client, user: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = profile_reads(client, monkeypatch)

    answers = [(await client.get(f"{API}/auth/me")).json() for _ in range(3)]
    await listed(client)

    assert answers == [{"id": user["id"], "email": "ada@example.com", "name": "Ada", "providers": ["password"]}] * 3
    assert reads.calls == 1


async def test_a_password_change_invalidates_the_profile(
    client: Client, user: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    await client.get(f"{API}/auth/me")
    reads = profile_reads(client, monkeypatch)
    # The one password change there is so far: a login that rehashes with new argon2 parameters.
    monkeypatch.setattr(services_of(client).auth._passwords, "needs_rehash", lambda stored_hash: True)
    assert (await login(client, "ada@example.com")).status_code == 200
    before = reads.calls  # (a store may read by id to find an email)

    me = await client.get(f"{API}/auth/me")

    assert me.json()["providers"] == ["password"]
    assert reads.calls == before + 1


async def test_a_user_never_gets_another_users_cached_profile(client: Client, user: dict[str, Any]) -> None:
    eve = await another_user(client)
    eve_me = (await eve.get(f"{API}/auth/me")).json()
    await client.get(f"{API}/auth/me")
    kv = services_of(client).kv
    ada_entry = await kv.get(await cached_key(kv, PROFILES, user["id"], "me"))
    assert ada_entry is not None

    eve_key = await cached_key(kv, PROFILES, eve_me["id"], "me")
    await kv.set(eve_key, ada_entry, PROFILE_TTL)
    assert (await eve.get(f"{API}/auth/me")).json() == eve_me
    forged = json.loads(ada_entry)
    forged[0] = eve_me["id"]
    await kv.set(eve_key, json.dumps(forged).encode(), PROFILE_TTL)
    assert (await eve.get(f"{API}/auth/me")).json() == eve_me


@pytest.mark.only_on("local", "memory", why="the test's clock moves the in-process KV's time; Redis keeps its own")
async def test_a_cached_profile_lives_at_most_its_lifetime(
    client: Client, user: dict[str, Any], clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await client.get(f"{API}/auth/me")
    reads = profile_reads(client, monkeypatch)

    clock.advance(PROFILE_TTL * 0.89)
    assert (await login(client, "ada@example.com")).status_code == 200  # the access token has expired
    before = reads.calls  # (a store may read by id to find an email)
    await client.get(f"{API}/auth/me")
    assert reads.calls == before
    clock.advance(PROFILE_TTL * 0.11 + timedelta(seconds=1))
    await client.get(f"{API}/auth/me")
    assert reads.calls == before + 1


# --- when the KV does not answer -----------------------------------------------------------------


async def test_lists_and_profiles_stay_right_when_the_kv_does_not_answer(
    client: Client, user: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = await upload(client, "kept")
    assert await listed(client) == [kept]
    reads = first_page_reads(client, monkeypatch)
    kv = services_of(client).kv

    async def no_answer(*args: Any) -> Any:
        raise KVUnavailable("no answer")

    for method in ("get", "set", "set_if_absent"):
        monkeypatch.setattr(kv, method, no_answer)

    gone = await upload(client, "gone")
    assert await listed(client) == [gone, kept]
    await delete(client, gone)
    assert await listed(client) == [kept]
    me = await client.get(f"{API}/auth/me")
    assert me.status_code == 200
    assert me.json()["id"] == user["id"]
    assert reads.calls == 2  # every list from the store
