"""The cookies that carry the session: names, attributes and lifetimes in one place."""

from __future__ import annotations

from datetime import timedelta

import msgspec
from litestar.datastructures import Cookie


class CookiePolicy(msgspec.Struct, frozen=True, kw_only=True):
    secure: bool
    """True when served over HTTPS: cookies get ``Secure`` and the ``__Host-`` prefix."""
    access_ttl: timedelta
    refresh_ttl: timedelta

    def _name(self, base: str) -> str:
        return f"__Host-{base}" if self.secure else base

    @property
    def access_name(self) -> str:
        return self._name("lfusys_access")

    @property
    def refresh_name(self) -> str:
        return self._name("lfusys_refresh")

    @property
    def csrf_name(self) -> str:
        return self._name("lfusys_csrf")

    def _cookie(self, key: str, value: str, max_age: int) -> Cookie:
        return Cookie(
            key=key,
            value=value,
            max_age=max_age,
            path="/",
            httponly=True,
            secure=self.secure,
            samesite="lax",
        )

    @property
    def sign_in_state_name(self) -> str:
        return self._name("lfusys_oauth_state")

    def sign_in_state_cookie(self, secret: str, max_age: timedelta) -> Cookie:
        """Binds a sign-in through an OAuth provider to this browser until its callback."""
        return self._cookie(self.sign_in_state_name, secret, int(max_age.total_seconds()))

    def session_cookies(self, access_token: str, refresh_token: str) -> list[Cookie]:
        return [
            self._cookie(self.access_name, access_token, int(self.access_ttl.total_seconds())),
            self._cookie(self.refresh_name, refresh_token, int(self.refresh_ttl.total_seconds())),
        ]

    def cleared_cookies(self) -> list[Cookie]:
        return [self._cookie(self.access_name, "", 0), self._cookie(self.refresh_name, "", 0)]
