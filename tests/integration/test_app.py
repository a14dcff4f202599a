"""Cross-cutting behaviour of the app: request ids, errors, access log, health, docs, headers."""

from __future__ import annotations

import pytest
from litestar import Litestar, get

from tests.conftest import AppFactory
from tests.support import API, BASE_URL, READY, AppClient, log_lines, services_of, signed_in

Client = AppClient


async def test_every_response_has_a_request_id(client: Client) -> None:
    for path in ("/health/live", "/nope", f"{API}/auth/me", "/api/docs"):
        response = await client.get(path)
        assert len(response.headers["x-request-id"]) == 32, path

    first = await client.get("/health/live")
    second = await client.get("/health/live")
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_a_sane_incoming_request_id_is_honoured(client: Client) -> None:
    response = await client.get("/health/live", headers={"x-request-id": "lb-7f3a.19:2"})

    assert response.headers["x-request-id"] == "lb-7f3a.19:2"


@pytest.mark.parametrize("bad", ["x" * 129, "has space", "new\\nline", "<script>", ""])
async def test_an_insane_incoming_request_id_is_replaced(client: Client, bad: str) -> None:
    response = await client.get("/health/live", headers={"x-request-id": bad})

    assert response.headers["x-request-id"] != bad
    assert len(response.headers["x-request-id"]) == 32


async def test_unknown_routes_and_methods_answer_in_the_error_shape(client: Client) -> None:
    not_found = await client.get(f"{API}/nothing-here")
    wrong_method = await client.delete(f"{API}/auth/me", headers={"x-csrf-token": "x"})

    assert not_found.status_code == 404
    assert set(not_found.json()) == {"error"}
    assert wrong_method.status_code in {403, 405}
    assert set(wrong_method.json()) == {"error"}


async def test_an_unexpected_exception_is_a_bare_500_and_is_logged(
    app: Litestar, capsys: pytest.CaptureFixture[str]
) -> None:
    @get("/boom", sync_to_thread=False)
    def boom() -> None:
        password = "s3cret-in-a-local"  # frame locals must not reach the log
        raise RuntimeError(f"database password is hunter2 ({len(password)})")

    app.register(boom)
    async with AppClient(app, base_url=BASE_URL) as client:
        response = await client.get("/boom")

    assert response.status_code == 500
    assert response.json() == {"error": "internal server error"}
    assert "hunter2" not in response.text
    assert response.headers["x-request-id"]
    err = capsys.readouterr().err
    assert "s3cret-in-a-local" not in err
    logged = [line for line in log_lines(err) if line["event"] == "unhandled exception"]
    assert len(logged) == 1
    assert logged[0]["request_id"] == response.headers["x-request-id"]
    assert "RuntimeError" in str(logged[0]["exception"])


@pytest.mark.parametrize("log_format", ["json", "console"])
async def test_a_traceback_never_shows_local_variables(
    app_factory: AppFactory, log_format: str, capsys: pytest.CaptureFixture[str]
) -> None:
    app = app_factory(log_format=log_format)

    @get("/boom", sync_to_thread=False)
    def boom() -> None:
        # What a frame might hold (a password, a token); built at run time so the source line shown
        # beside a traceback does not contain it.
        secret = "-".join(["s3cret", "in", "a", "local"])
        raise RuntimeError(f"failed after {len(secret)} characters")

    app.register(boom)
    async with AppClient(app, base_url=BASE_URL) as client:
        assert (await client.get("/boom")).status_code == 500

    err = capsys.readouterr().err
    assert "RuntimeError" in err
    assert "s3cret-in-a-local" not in err


async def test_one_access_log_line_per_request_with_route_status_duration_and_user(
    client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    user = await signed_in(client)
    capsys.readouterr()

    response = await client.get(f"{API}/auth/me")
    anonymous = await client.get("/nope")

    access = [line for line in log_lines(capsys.readouterr().err) if line["logger"] == "lfusys.access"]
    assert len(access) == 2
    signed, unmatched = access
    assert signed["request_id"] == response.headers["x-request-id"]
    assert signed["method"] == "GET"
    assert signed["route"] == f"{API}/auth/me"
    assert signed["status"] == 200
    assert signed["user_id"] == user["id"]
    assert signed["client"] == "127.0.0.1"
    assert isinstance(signed["duration_ms"], float)
    assert unmatched["status"] == 404
    assert unmatched["user_id"] is None
    assert unmatched["request_id"] == anonymous.headers["x-request-id"]


async def test_logs_never_contain_tokens_or_passwords(client: Client, capsys: pytest.CaptureFixture[str]) -> None:
    await signed_in(client)
    await client.get(f"{API}/auth/me")

    err = capsys.readouterr().err
    assert client.cookies["lfusys_access"] not in err
    assert client.cookies["lfusys_refresh"] not in err
    assert "correct horse battery" not in err


async def test_security_headers_are_on_every_response(client: Client) -> None:
    for path in ("/health/live", "/nope"):
        response = await client.get(path)
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert "strict-transport-security" not in response.headers


async def test_health_probes(client: Client, backend_name: str) -> None:
    assert (await client.get("/health/live")).json() == {"status": "ok"}
    ready = await client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json() == READY[backend_name]


async def test_ready_is_503_when_the_metadata_store_is_down(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    # The local database really closed: tests/integration/storage/local/test_database.py.
    async def down() -> None:
        raise ConnectionError("metadata store unreachable")

    monkeypatch.setitem(services_of(client).backend.checks, "metadata", down)

    response = await client.get("/health/ready")
    live = await client.get("/health/live")

    assert response.status_code == 503
    assert response.json() == {"error": "metadata unavailable"}
    assert live.status_code == 200


async def test_openapi_schema_and_docs_page(client: Client) -> None:
    schema = await client.get("/api/docs/openapi.json")
    docs = await client.get("/api/docs")

    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert f"{API}/auth/register" in paths
    operation_ids = {op["operationId"] for path in paths.values() for op in path.values()}
    assert {"register", "login", "refresh", "logout", "me", "live", "ready"} <= operation_ids
    assert docs.status_code == 200
    assert "text/html" in docs.headers["content-type"]


@pytest.mark.durable_only("a restart finds the data the first app stored")
async def test_the_service_restarts_on_the_same_data(app_factory: AppFactory) -> None:
    async with AppClient(app_factory(), base_url=BASE_URL) as client:
        await signed_in(client)
        cookies = dict(client.cookies)

    async with AppClient(app_factory(), base_url=BASE_URL, cookies=cookies) as client:
        assert (await client.get(f"{API}/auth/me")).status_code == 200
