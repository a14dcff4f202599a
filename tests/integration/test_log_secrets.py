"""What the logs of a real server hold after sign-ins (password, refresh, provider, API token) and an upload with a
signed download: request, user and upload ids where known, and no password, token, cookie, secret or
signature anywhere — at debug level, so nothing is hidden by the level."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx

from tests.fake_oauth import FakeProvider
from tests.support import (
    API,
    PASSWORD,
    LiveServer,
    csrf_headers,
    follow_link,
    log_lines,
    login,
    random_bytes,
    signed_in,
    upload_file,
)

CLIENT_ID, CLIENT_SECRET = "log-test-client", "log-test-client-secret-f00d"
NEW_PASSWORD = "another long password 9f3a"
WRONG_PASSWORD = "a wrong guess 71c2e8"
METRICS_TOKEN = "metrics-token-5b7d1e0c"


def jar_values(client: httpx.AsyncClient) -> set[str]:
    return {value for value in client.cookies.values() if len(value) >= 8}


async def test_no_secret_reaches_the_logs_and_every_line_names_what_it_is_about(tmp_path: Path, data_dir: Path) -> None:
    secrets = {PASSWORD, NEW_PASSWORD, WRONG_PASSWORD, CLIENT_SECRET, METRICS_TOKEN}
    log_path = tmp_path / "server.log"
    with FakeProvider(CLIENT_ID, CLIENT_SECRET) as provider:
        server = LiveServer(
            data_dir,
            log_path,
            LFUSYS_LOG_LEVEL="debug",
            LFUSYS_METRICS_TOKEN=METRICS_TOKEN,
            LFUSYS_MIN_CHUNK_SIZE="1024",
            LFUSYS_DEFAULT_CHUNK_SIZE="4096",
            LFUSYS_GITHUB_CLIENT_ID=CLIENT_ID,
            LFUSYS_GITHUB_CLIENT_SECRET=CLIENT_SECRET,
            LFUSYS_GITHUB_AUTHORIZE_URL=provider.github_authorize_url,
            LFUSYS_GITHUB_TOKEN_URL=provider.github_token_url,
            LFUSYS_GITHUB_API_URL=provider.github_api_url,
        )
        try:
            async with httpx.AsyncClient(base_url=server.url) as ada, httpx.AsyncClient(base_url=server.url) as octo:
                user = await signed_in(ada)
                secrets |= jar_values(ada)
                async with httpx.AsyncClient(base_url=server.url) as stranger:
                    assert (await login(stranger, user["email"], WRONG_PASSWORD)).status_code == 401
                assert (await ada.post(f"{API}/auth/refresh", headers=await csrf_headers(ada))).status_code == 200
                secrets |= jar_values(ada)
                changed = await ada.put(
                    f"{API}/auth/password",
                    json={"password": NEW_PASSWORD, "current_password": PASSWORD},
                    headers=await csrf_headers(ada),
                )
                assert changed.status_code == 204

                done = await upload_file(ada, random_bytes(10_000))
                link = (await ada.get(f"{API}/files/{done['file_id']}/download")).json()["url"]
                assert (await follow_link(ada, link, {"range": "bytes=0-99"})).status_code == 206
                secrets |= {value for _, value in parse_qsl(urlsplit(link).query) if len(value) >= 8}

                started = await octo.get(f"{API}/auth/github/login", params={"next": "/files"})
                secrets |= jar_values(octo)
                approved = await octo.get(started.headers["location"])
                callback = urlsplit(approved.headers["location"])
                secrets |= {value for _, value in parse_qsl(callback.query)}  # the code and the state
                signed_in_octo = await octo.get(f"{callback.path}?{callback.query}")
                assert signed_in_octo.status_code == 302
                secrets |= jar_values(octo)

                made = await ada.post(
                    f"{API}/tokens", json={"name": "script", "scopes": ["read"]}, headers=await csrf_headers(ada)
                )
                api_token = made.json()["token"]
                secrets |= {api_token, api_token.split("_", 2)[2]}  # the whole token, and its secret part
                async with httpx.AsyncClient(base_url=server.url) as script:
                    as_script = await script.get(f"{API}/files", headers={"authorization": f"Bearer {api_token}"})
                    assert as_script.status_code == 200
                    wrong = await script.get(f"{API}/files", headers={"authorization": f"Bearer {api_token}x"})
                    assert wrong.status_code == 401
                metrics = await ada.get("/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"})
                assert metrics.status_code == 200
                assert (await ada.post(f"{API}/auth/logout", headers=await csrf_headers(ada))).status_code == 204
        finally:
            server.stop()
        secrets |= {request.fields.get("code_verifier", "") for request in provider.token_requests} - {""}

    server_keys = json.loads((data_dir / "secrets.json").read_text())
    secrets |= {value for value in server_keys.values() if isinstance(value, str) and len(value) >= 8}
    text = log_path.read_text()
    lines = log_lines(text)
    assert len(lines) > 20
    leaked = sorted(secret for secret in secrets if secret in text)
    assert leaked == [], f"{len(leaked)} secret(s) in the log"

    requests = [line for line in lines if line.get("event") == "request"]
    assert all(line.get("request_id") for line in requests)
    chunk_lines = [line for line in requests if line.get("route") == "/api/v1/uploads/{upload_id}/chunks/{n}"]
    assert chunk_lines
    assert {(line["user_id"], line["upload_id"]) for line in chunk_lines} == {(user["id"], done["upload_id"])}
    started_line = next(line for line in lines if line.get("event") == "upload started")
    assert (started_line["user_id"], started_line["upload_id"]) == (user["id"], done["upload_id"])
    assert started_line["request_id"]
