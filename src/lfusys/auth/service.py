"""Accounts and sign-in: register, log in, refresh with rotation and reuse detection, log out."""

from __future__ import annotations

import asyncio
import re
import secrets
import unicodedata
import uuid
from datetime import UTC, datetime, timedelta

import msgspec
import structlog
from email_validator import EmailNotValidError, validate_email

from lfusys.auth.oauth import PROVIDER_NAMES, IdentityRefused, ProviderIdentity
from lfusys.auth.passwords import Passwords
from lfusys.auth.records import EmailTaken, IdentityTaken, RefreshOutcome, RefreshToken, User
from lfusys.auth.tokens import InvalidToken, TokenClaims, TokenCodec, TokenType
from lfusys.cache import OwnedCache
from lfusys.clock import Clock, utc_now
from lfusys.errors import Conflict, Forbidden, InvalidInput, NotAuthenticated
from lfusys.storage.ports import KV, TokenStore, UserStore

log = structlog.get_logger(__name__)

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_LOGIN_FAILED = "invalid email or password"


def normalise_email(email: str) -> str:
    """Validate the address's syntax and return its canonical form: NFKC (so fullwidth letters are
    plain letters), then case-folded, so addresses that look the same are the same account."""
    try:
        result = validate_email(unicodedata.normalize("NFKC", email).strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInput(f"email: {exc}") from None
    return result.normalized.casefold()


def clean_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise InvalidInput("name: must be 1 to 100 characters")
    if _CONTROL_CHARACTERS.search(name):
        raise InvalidInput("name: must not contain control characters")
    return name


PROFILES = "profile"
"""The kind of cached value (:mod:`lfusys.cache`) a caller's account is."""


def profile_cache(kv: KV, ttl: timedelta) -> OwnedCache[User]:
    """Each signed-in caller's account, without secrets, as :meth:`AuthService.authenticate` knows it."""
    return OwnedCache(kv, kind=PROFILES, value_type=User, ttl=ttl, owned_by=lambda user, owner_id: user.id == owner_id)


class SignedIn(msgspec.Struct, frozen=True, kw_only=True):
    user: User
    access_token: str
    refresh_token: str


class AuthService:
    """Accounts and their sign-ins. Every write to an account (password, name, linked providers) is
    followed by ``self._profiles.changed(user_id)``, so no process goes on serving the old profile."""

    def __init__(
        self,
        *,
        users: UserStore,
        tokens: TokenStore,
        passwords: Passwords,
        codec: TokenCodec,
        reuse_grace: timedelta,
        profiles: OwnedCache[User],
        clock: Clock = utc_now,
    ) -> None:
        self._users = users
        self._profiles = profiles
        self._tokens = tokens
        self._passwords = passwords
        self._codec = codec
        self._reuse_grace = reuse_grace
        self._clock = clock

    async def register(self, *, name: str, email: str, password: str) -> User:
        user = User(
            id=uuid.uuid4().hex,
            email=normalise_email(email),
            name=clean_name(name),
            password_hash=await self._passwords.hash(password),
            created_at=self._clock(),
        )
        try:
            await self._users.create(user)
        except EmailTaken:
            raise Conflict("an account with this email already exists") from None
        log.info("user registered", user_id=user.id)
        return user

    async def login(self, *, email: str, password: str) -> SignedIn:
        """One generic failure for unknown email, wrong password or OAuth-only account.

        Every path runs exactly one argon2 verification, so timing does not tell them apart.
        """
        try:
            user = await self._users.get_by_email(normalise_email(email))
        except InvalidInput:
            user = None
        stored_hash = user.password_hash if user else None
        verified = await self._passwords.verify(stored_hash, password)
        if user is None or stored_hash is None or not verified:
            raise NotAuthenticated(_LOGIN_FAILED)
        if self._passwords.needs_rehash(stored_hash):
            await self._users.set_password_hash(user.id, await self._passwords.hash(password))
            await self._profiles.changed(user.id)
            log.info("password rehashed", user_id=user.id)
        return await self._start_session(user)

    async def set_password(self, user_id: str, *, password: str, current_password: str | None) -> None:
        """Give the account a password (so email sign-in works too) or change it. Changing needs the
        current password; an account without one (provider sign-in only) sets its first without.
        A wrong or missing current password is :class:`Forbidden`."""
        user = await self._users.get(user_id)
        if user is None:
            raise NotAuthenticated("session ended; sign in again")
        if user.password_hash is not None:
            # verify() runs one argon2 check even when current_password is missing.
            matches = await self._passwords.verify(user.password_hash, current_password or "")
            if not current_password or not matches:
                raise Forbidden("current_password: does not match this account's password")
        await self._users.set_password_hash(user.id, await self._passwords.hash(password))
        await self._profiles.changed(user.id)
        log.info("password set" if user.password_hash is None else "password changed", user_id=user.id)

    async def sign_in_with_identity(self, identity: ProviderIdentity) -> SignedIn:
        """Sign in the account a provider vouches for: the one linked to this identity; else the account
        with the identity's email, linked now (only when the provider says the email is verified); else
        a new account (password-less until one is set). Raises :class:`IdentityRefused`."""
        user = await self._users.get_by_identity(identity.provider, identity.subject)
        if user is None:
            user = await self._link_or_create(identity)
        return await self._start_session(user)

    async def _link_or_create(self, identity: ProviderIdentity) -> User:
        provider = PROVIDER_NAMES.get(identity.provider, identity.provider)
        if not identity.email_verified:
            raise IdentityRefused(f"{provider} did not confirm your email address, so it cannot be used to sign in.")
        email = normalise_email(identity.email)
        existing = await self._users.get_by_email(email)
        if existing is None:
            fresh = User(
                id=uuid.uuid4().hex,
                email=email,
                name=clean_name(identity.name or email.split("@", 1)[0]),
                password_hash=None,
                created_at=self._clock(),
            )
            try:
                await self._users.create_with_identity(fresh, identity.provider, identity.subject)
                log.info("user registered", user_id=fresh.id, provider=identity.provider)
                return fresh
            except IdentityTaken:  # the same first sign-in, a moment earlier (another tab, another replica)
                linked = await self._users.get_by_identity(identity.provider, identity.subject)
                if linked is not None:
                    return linked
                raise
            except EmailTaken:  # registered with a password a moment ago: link to it below
                existing = await self._users.get_by_email(email)
                if existing is None:
                    raise
        owner_id = await self._users.link_identity(existing.id, identity.provider, identity.subject, self._clock())
        await self._profiles.changed(owner_id)
        owner = existing if owner_id == existing.id else await self._users.get(owner_id)
        if owner is None:
            raise IdentityRefused(f"The {provider} account is linked to an account that no longer exists.")
        log.info("provider linked", user_id=owner.id, provider=identity.provider)
        return owner

    async def refresh(self, refresh_token: str | None) -> SignedIn:
        """Rotate both tokens. A refresh token presented again after the grace window revokes its
        whole family; within it (concurrent tabs, a lost response) it is rotated once more."""
        claims = self._decode(TokenType.REFRESH, refresh_token)
        now = self._clock()
        outcome = await self._tokens.spend_refresh_token(claims.jti, now, self._reuse_grace)
        if outcome is RefreshOutcome.REUSED:
            await self._tokens.revoke_family(claims.fid, now)
            log.warning("refresh token reused; family revoked", user_id=claims.sub, family=claims.fid)
            raise NotAuthenticated("session ended; sign in again")
        if outcome is RefreshOutcome.RECENTLY_ROTATED:
            # Two tabs, or a retry after a lost response: both get a working sign-in.
            log.info("refresh token presented again within the grace window", user_id=claims.sub)
        elif outcome is not RefreshOutcome.ROTATED:
            raise NotAuthenticated("session ended; sign in again")
        user = await self._users.get(claims.sub)
        if user is None:
            raise NotAuthenticated("session ended; sign in again")
        return await self._issue(user, claims.fid, now)

    async def logout(self, *, access_token: str | None, refresh_token: str | None) -> None:
        """Revoke the sign-in named by whichever valid token the client still holds."""
        now = self._clock()
        for kind, token in ((TokenType.REFRESH, refresh_token), (TokenType.ACCESS, access_token)):
            if not token:
                continue
            try:
                claims = self._codec.decode(kind, token, now)
            except InvalidToken:
                continue
            await self._tokens.revoke_family(claims.fid, now)
            log.info("signed out", user_id=claims.sub)
            return

    async def authenticate(self, access_token: str | None) -> tuple[User, TokenClaims]:
        """The user behind an access token, if its sign-in is still active; without secrets
        (:meth:`User.without_secrets`), the same whether it came from the profile cache or the store."""
        claims = self._decode(TokenType.ACCESS, access_token)
        # Both lookups at once: this runs before every request, chunk uploads included. The sign-in is
        # always checked in its store (a logout counts at once); the account may come from the cache.
        user, active = await asyncio.gather(self._caller(claims.sub), self._tokens.is_family_active(claims.fid))
        if not active:
            raise NotAuthenticated("session ended; sign in again")
        return user, claims

    async def caller(self, user_id: str) -> User:
        """The account ``user_id`` as a request's caller (cached, without secrets); NotAuthenticated if
        it no longer exists."""
        return await self._caller(user_id)

    async def _caller(self, user_id: str) -> User:
        async def stored() -> User:
            user = await self._users.get(user_id)
            if user is None:
                raise NotAuthenticated("session ended; sign in again")
            return user.without_secrets()

        return await self._profiles.get(user_id, "me", stored)

    def _decode(self, kind: TokenType, token: str | None) -> TokenClaims:
        if not token:
            raise NotAuthenticated("not signed in")
        try:
            return self._codec.decode(kind, token, self._clock())
        except InvalidToken as exc:
            raise NotAuthenticated(str(exc)) from None

    async def _start_session(self, user: User) -> SignedIn:
        now = self._clock()
        family_id = secrets.token_urlsafe(16)
        await self._tokens.start_family(family_id, user.id, now)
        return await self._issue(user, family_id, now)

    async def _issue(self, user: User, family_id: str, now: datetime) -> SignedIn:
        access, _ = self._codec.issue(TokenType.ACCESS, user_id=user.id, family_id=family_id, now=now)
        refresh, claims = self._codec.issue(TokenType.REFRESH, user_id=user.id, family_id=family_id, now=now)
        await self._tokens.add_refresh_token(
            RefreshToken(
                jti=claims.jti,
                family_id=family_id,
                user_id=user.id,
                expires_at=datetime.fromtimestamp(claims.exp, UTC),
            )
        )
        return SignedIn(user=user, access_token=access, refresh_token=refresh)
