"""Schema-driven fuzzing of the whole API with Schemathesis, against a real server, signed in with CSRF.

Every operation in the app's own OpenAPI schema gets generated requests, valid and invalid; none may
answer with a 5xx or with a response its schema does not allow. Bounded: a few hundred examples.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
)
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.schemas import OpenApiSchema

from tests.support import API, PASSWORD, LiveServer

EXAMPLES_PER_OPERATION = 25


@pytest.fixture(scope="module")
def fuzzed_server(tmp_path_factory: pytest.TempPathFactory, backend_name: str) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("fuzz")
    server = LiveServer(
        root / "data",
        root / "server.log",
        backend=backend_name,
        LFUSYS_MIN_CHUNK_SIZE="1024",
        LFUSYS_LOG_LEVEL="warning",
    )
    try:
        yield server
    finally:
        server.stop()
    # Whatever the requests were, nothing may have been logged as an unhandled server error.
    assert "unhandled exception" not in (root / "server.log").read_text(errors="replace")


@pytest.fixture(scope="module")
def account(fuzzed_server: LiveServer) -> dict[str, str]:
    email = f"{uuid.uuid4().hex}@example.com"
    with httpx.Client(base_url=fuzzed_server.url) as client:
        client.get(f"{API}/auth/me")
        registered = client.post(
            f"{API}/auth/register",
            json={"name": "Fuzz", "email": email, "password": PASSWORD},
            headers={"x-csrf-token": client.cookies["lfusys_csrf"]},
        )
        assert registered.status_code == 201, registered.text
    return {"email": email, "password": PASSWORD}


@pytest.fixture(scope="module")
def api_schema(fuzzed_server: LiveServer) -> OpenApiSchema:
    return schemathesis.openapi.from_url(f"{fuzzed_server.url}/api/docs/openapi.json")


def fresh_sign_in(server: LiveServer, account: dict[str, str]) -> dict[str, str]:
    """Cookies and CSRF header of a new sign-in, so a fuzzed logout or refresh cannot spoil the next case."""
    with httpx.Client(base_url=server.url) as client:
        client.get(f"{API}/auth/me")
        csrf = client.cookies["lfusys_csrf"]
        signed_in = client.post(f"{API}/auth/login", json=account, headers={"x-csrf-token": csrf})
        assert signed_in.status_code == 200, signed_in.text
        cookies = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
    return {"cookie": cookies, "x-csrf-token": csrf}


CHECKS = [not_a_server_error, content_type_conformance, response_headers_conformance, response_schema_conformance]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_no_request_makes_the_api_fail_or_break_its_schema(
    api_schema: OpenApiSchema, fuzzed_server: LiveServer, account: dict[str, str], mode: GenerationMode
) -> None:
    operations = []
    for result in api_schema.get_all_operations():
        assert isinstance(result, Ok), result
        operations.append(result.ok())
    assert len(operations) >= 15  # every route of the API is in the schema

    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def call(case: Case[Any]) -> None:
            headers: dict[str, Any] = {**dict(case.headers or {}), **fresh_sign_in(fuzzed_server, account)}
            response = case.call(base_url=fuzzed_server.url, headers=headers)
            case.validate_response(response, checks=CHECKS)

        try:
            call()
        except Unsatisfiable:
            # An operation without parameters or body has no invalid request to make.
            assert mode is GenerationMode.NEGATIVE, operation.label
