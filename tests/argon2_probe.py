"""Watching argon2 from outside: how many verifications run at once, for the tests of its bound."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from argon2 import PasswordHasher


class ConcurrentVerifications:
    """Wraps argon2's ``verify`` (for as long as ``monkeypatch`` lasts): counts every verification
    and the most that ran at once, each made to take ``seconds`` longer so that they overlap."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
        self.seconds = seconds
        self.running = 0
        self.most = 0
        self.total = 0
        self._lock = threading.Lock()
        verify = PasswordHasher.verify

        def counted_verify(hasher: PasswordHasher, stored: str, password: str) -> Any:
            with self._lock:
                self.running += 1
                self.total += 1
                self.most = max(self.most, self.running)
            try:
                time.sleep(self.seconds)
                return verify(hasher, stored, password)
            finally:
                with self._lock:
                    self.running -= 1

        monkeypatch.setattr(PasswordHasher, "verify", counted_verify)
