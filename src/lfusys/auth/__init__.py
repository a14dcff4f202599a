"""Accounts and sign-in: users, passwords, tokens, cookies, and the guard other modules use (``auth.middleware``)."""
