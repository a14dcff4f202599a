"""``/metrics``: HTTP requests by route template and what the upload pipeline did, in Prometheus' text
format, with bounded label values; behind a bearer token when one is set; added up across server
processes."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import AppFactory
from tests.support import (
    API,
    SMALL_CHUNKS,
    AppClient,
    LiveServer,
    csrf_headers,
    random_bytes,
    signed_in,
    upload_file,
)

CHUNK_ROUTE = "/api/v1/uploads/{upload_id}/chunks/{n}"


def sample(text: str, name: str, **labels: str) -> float:
    """The value of sample ``name`` with (at least) ``labels``; 0 if there is none yet."""
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and labels.items() <= found.labels.items():
                return float(found.value)
    return 0.0


def queue_gauges(text: str) -> set[str]:
    return {
        found.labels["queue"]
        for family in text_string_to_metric_families(text)
        for found in family.samples
        if found.name == "lfusys_event_queue_messages"
    }


async def scrape(client: httpx.AsyncClient, headers: dict[str, str] | None = None) -> str:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def test_an_upload_shows_in_the_metrics(app_factory: AppFactory) -> None:
    data = random_bytes(10_000)
    async with AppClient(app_factory(**SMALL_CHUNKS)) as client:
        user = await signed_in(client)
        before = await scrape(client)
        done = await upload_file(client, data)
        after = await scrape(client)

    def grew(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    chunks = -(-len(data) // SMALL_CHUNKS["default_chunk_size"])
    assert done["status"] == "completed"
    assert grew("lfusys_uploads_total", event="started") == 1
    assert grew("lfusys_uploads_total", event="completed") == 1
    assert grew("lfusys_bytes_received_total") == len(data)
    assert grew("lfusys_chunk_put_duration_seconds_count") == chunks
    assert grew("lfusys_finalize_duration_seconds_count") == 1
    assert grew("lfusys_file_size_bytes_sum") == len(data)
    assert grew("lfusys_http_requests_total", path=CHUNK_ROUTE, method="PUT", status_code="200") == chunks
    assert grew("lfusys_http_request_duration_seconds_count", path=CHUNK_ROUTE, method="PUT") == chunks
    # The worker handled the events within seconds; the queue was sampled when the server started.
    assert 0 <= sample(after, "lfusys_event_age_seconds") < 60
    assert {"main", "in_flight", "dead_letter"} <= queue_gauges(after)
    # Label values are route templates and fixed words: no id, no raw path.
    for secret_label in (done["upload_id"], user["id"], done["file_id"]):
        assert secret_label not in after


async def test_paths_that_match_no_route_add_no_label(app_factory: AppFactory) -> None:
    async with AppClient(app_factory()) as client:
        for n in range(5):
            assert (await client.get(f"/api/v1/no-such-thing-{n}")).status_code == 404
        text = await scrape(client)

    assert "no-such-thing" not in text


async def test_rate_limit_rejections_are_counted_by_limit(app_factory: AppFactory) -> None:
    async with AppClient(app_factory(rate_limit_auth=2)) as client:
        before = await scrape(client)
        statuses = [(await client.get(f"{API}/auth/providers")).status_code for _ in range(4)]
        after = await scrape(client)

    assert statuses == [200, 200, 429, 429]
    rejected = sample(after, "lfusys_rate_limit_rejections_total", limit="auth")
    assert rejected - sample(before, "lfusys_rate_limit_rejections_total", limit="auth") == 2


@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        (None, 401),
        ("Bearer wrong-token", 401),
        ("Basic bWV0cmljcy10b2tlbg==", 401),
        ("Bearer", 401),
        ("Bearer metrics-token", 200),
        ("bearer metrics-token", 200),
    ],
)
async def test_with_a_token_only_its_bearer_reads_the_metrics(
    app_factory: AppFactory, authorization: str | None, status: int
) -> None:
    async with AppClient(app_factory(metrics_token="metrics-token")) as client:
        headers = {"authorization": authorization} if authorization else {}
        response = await client.get("/metrics", headers=headers)

    assert response.status_code == status
    if status == 200:
        assert "lfusys_uploads_total" in response.text
    else:
        assert "lfusys_" not in response.text


async def test_metrics_need_no_sign_in_and_no_csrf_token(app_factory: AppFactory) -> None:
    async with AppClient(app_factory()) as client:
        assert (await client.get("/metrics")).status_code == 200
        assert (await client.post("/metrics", headers=await csrf_headers(client))).status_code == 405


@pytest.mark.local_only("one server with several processes on the embedded default")
def test_several_server_processes_count_together(tmp_path: Path, data_dir: Path) -> None:
    server = LiveServer(data_dir, tmp_path / "server.log", workers=2, LFUSYS_ALLOW_PROCESS_KV="true")
    try:
        with httpx.Client(base_url=server.url) as client:
            route = f"{API}/auth/providers"
            requests = 40
            for _ in range(requests):
                # A new connection each time, so both processes answer some of them.
                assert client.get(route, headers={"connection": "close"}).status_code == 200
            scrapes = [client.get("/metrics", headers={"connection": "close"}).text for _ in range(6)]
    finally:
        server.stop()

    counted = [sample(text, "lfusys_http_requests_total", path=route, method="GET") for text in scrapes]
    assert counted == [requests] * len(scrapes)
