"""Accounts and sign-in: users, passwords, tokens, cookies, and the guard other modules use."""

from lfusys.auth.middleware import provide_current_user, requires_user

__all__ = ["provide_current_user", "requires_user"]
