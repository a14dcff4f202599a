"""The pending state of an OAuth sign-in: single use, bound to the browser, ten minutes, PKCE, and a
`next` that can only stay on this site. Run on each KV adapter (the process's own and Redis)."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta

import pytest

from lfusys.auth.oauth_state import DEFAULT_NEXT, STATE_TTL, SignInRefused, SignInStates, pkce_pair, safe_next
from lfusys.storage.ports import KV
from tests.conftest import Elapse


async def test_a_pending_sign_in_is_taken_once_by_the_browser_that_started_it(kv: KV) -> None:
    states = SignInStates(kv)
    started = await states.begin("github", "/files?page=2", with_nonce=False)

    pending = await states.take("github", started.state, started.browser_secret)

    assert (pending.provider, pending.next, pending.nonce) == ("github", "/files?page=2", None)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(pending.verifier.encode()).digest()).rstrip(b"=").decode()
    assert challenge == started.challenge
    with pytest.raises(SignInRefused, match="already used"):
        await states.take("github", started.state, started.browser_secret)  # replayed


async def test_google_sign_ins_carry_a_nonce(kv: KV) -> None:
    states = SignInStates(kv)
    started = await states.begin("google", None, with_nonce=True)

    pending = await states.take("google", started.state, started.browser_secret)

    assert started.nonce is not None
    assert pending.nonce == started.nonce
    assert pending.next == DEFAULT_NEXT


@pytest.mark.parametrize(
    ("state", "secret", "provider", "message"),
    [
        (None, "mine", "github", "incomplete"),
        ("", "mine", "github", "incomplete"),
        ("never-issued", "mine", "github", "expired or was already used"),
        ("issued", "mine", "google", "expired or was already used"),  # another provider's callback
        ("issued", "theirs", "github", "another browser"),
        ("issued", None, "github", "another browser"),  # no state cookie at all
        ("issued", "", "github", "another browser"),
    ],
)
async def test_a_callback_without_its_own_pending_sign_in_is_refused(
    kv: KV, state: str | None, secret: str | None, provider: str, message: str
) -> None:
    states = SignInStates(kv)
    started = await states.begin("github", "/", with_nonce=False)
    state = started.state if state == "issued" else state
    secret = started.browser_secret if secret == "mine" else secret

    with pytest.raises(SignInRefused, match=message):
        await states.take(provider, state, secret)


async def test_a_pending_sign_in_expires_after_ten_minutes(kv: KV, elapse: Elapse) -> None:
    states = SignInStates(kv)
    late = await states.begin("github", "/", with_nonce=False)
    in_time = await states.begin("github", "/", with_nonce=False)

    await elapse(STATE_TTL - timedelta(seconds=5))
    assert (await states.take("github", in_time.state, in_time.browser_secret)).provider == "github"
    await elapse(timedelta(seconds=10))
    with pytest.raises(SignInRefused, match="expired"):
        await states.take("github", late.state, late.browser_secret)


def test_pkce_verifiers_are_long_random_and_url_safe() -> None:
    pairs = [pkce_pair() for _ in range(20)]

    assert len({verifier for verifier, _ in pairs}) == 20
    for verifier, challenge in pairs:
        assert 43 <= len(verifier) <= 128
        assert set(verifier) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        assert "=" not in challenge


@pytest.mark.parametrize(
    "path", ["/", "/files", "/files?page=2#top", "/upload/a%2F%2Fb", "/%2F%2Fevil.example", "/caf%C3%A9"]
)
def test_a_path_on_this_site_is_kept(path: str) -> None:
    assert safe_next(path) == path


@pytest.mark.parametrize(
    "attempt",
    [
        None,
        "",
        "files",  # not absolute
        "//evil.example",
        "//evil.example/files",
        "/\\evil.example",
        "\\\\evil.example",
        "/\\/evil.example",
        "https://evil.example",
        "http:/evil.example",
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "/\t/evil.example",  # browsers drop the tab: //evil.example
        "/\n/evil.example",
        "/\r\n/evil.example",
        " /files",
        "/files page",
        "/files\x00",
        "/files\x7f",
        "/files\\..\\admin",
        "/" + "a" * 3000,
    ],
)
def test_every_way_out_of_this_site_falls_back_to_the_start_page(attempt: str | None) -> None:
    assert safe_next(attempt) == DEFAULT_NEXT
