"""The short-lived state of one sign-in through an OAuth provider, between the redirect to the provider
and its callback.

Starting a sign-in stores a record under a random ``state`` in the KV (set-if-absent, ten minutes):
the provider, the PKCE verifier, the OpenID ``nonce`` (Google), the page to return to, and the hash
of a second random value that goes to the browser in a short-lived HttpOnly cookie. The callback takes
the record away (get-and-delete: a state is used once, on any replica) and accepts it only from the
browser holding that cookie, so a sign-in started in one browser cannot be completed in another (a
login CSRF). Records are one-time state: if the KV does not answer, the sign-in fails rather than
going on without its checks.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

import msgspec
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from lfusys.storage.ports import KV

STATE_TTL = timedelta(minutes=10)
DEFAULT_NEXT = "/"
_MAX_NEXT = 2000


class SignInRefused(Exception):
    """The callback cannot go on; the message is what the sign-in page tells the user."""


class PendingSignIn(msgspec.Struct, frozen=True, kw_only=True):
    provider: str
    verifier: str
    """The PKCE code verifier; the provider saw only its S256 challenge."""
    nonce: str | None
    """The OpenID nonce the ID token must carry (Google), or None."""
    next: str
    """Where the browser goes once signed in: a path on this site."""
    browser: str
    """SHA-256 (hex) of the secret in the browser's state cookie."""


def safe_next(candidate: str | None) -> str:
    """``candidate`` if it is a path on this site, else :data:`DEFAULT_NEXT`.

    Only an absolute path is taken: it starts with one ``/`` that no second ``/`` or ``\\`` follows
    (browsers read ``//host`` and ``/\\host`` as another site), with no backslash, control character or
    space anywhere (browsers drop tabs and newlines from URLs, so ``/\\t/host`` would become ``//host``).
    """
    if not candidate or len(candidate) > _MAX_NEXT or not candidate.startswith("/"):
        return DEFAULT_NEXT
    if candidate.startswith(("//", "/\\")) or "\\" in candidate:
        return DEFAULT_NEXT
    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in candidate):
        return DEFAULT_NEXT
    return candidate


def pkce_pair() -> tuple[str, str]:
    """A PKCE code verifier and its ``S256`` challenge (RFC 7636)."""
    verifier = secrets.token_urlsafe(48)  # 64 characters, within the 43 to 128 allowed
    challenge = create_s256_code_challenge(verifier)
    assert isinstance(challenge, str)
    return verifier, challenge


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _key(state: str) -> str:
    return f"oauth:state:{state}"


class Started(msgspec.Struct, frozen=True, kw_only=True):
    state: str
    """Sent to the provider, which hands it back to the callback."""
    browser_secret: str
    """For the browser's state cookie."""
    challenge: str
    """The PKCE challenge for the provider."""
    nonce: str | None


class SignInStates:
    """Pending sign-ins in the KV, each usable once, from the browser that started it."""

    def __init__(self, kv: KV) -> None:
        self._kv = kv

    async def begin(self, provider: str, next_path: str | None, *, with_nonce: bool) -> Started:
        """Store a new pending sign-in. Raises :class:`~lfusys.storage.ports.KVUnavailable`."""
        verifier, challenge = pkce_pair()
        state, browser_secret = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        nonce = secrets.token_urlsafe(24) if with_nonce else None
        pending = PendingSignIn(
            provider=provider,
            verifier=verifier,
            nonce=nonce,
            next=safe_next(next_path),
            browser=_digest(browser_secret),
        )
        if not await self._kv.set_if_absent(_key(state), msgspec.json.encode(pending), STATE_TTL):
            raise RuntimeError("a fresh random state was already taken")  # 256 random bits: never
        return Started(state=state, browser_secret=browser_secret, challenge=challenge, nonce=nonce)

    async def take(self, provider: str, state: str | None, browser_secret: str | None) -> PendingSignIn:
        """The pending sign-in ``state`` names, taken away for good; :class:`SignInRefused` unless it
        exists, has not expired, is for ``provider`` and was started by the browser holding
        ``browser_secret``. Raises :class:`~lfusys.storage.ports.KVUnavailable`."""
        if not state:
            raise SignInRefused("The sign-in could not be completed: the provider's answer was incomplete.")
        stored = await self._kv.get_and_delete(_key(state))
        pending = msgspec.json.decode(stored, type=PendingSignIn) if stored is not None else None
        if pending is None or pending.provider != provider:
            raise SignInRefused("This sign-in has expired or was already used. Please try again.")
        if not browser_secret or not hmac.compare_digest(_digest(browser_secret), pending.browser):
            raise SignInRefused("This sign-in was started in another browser. Please try again here.")
        return pending
