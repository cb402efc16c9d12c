"""A clock a test moves by hand, for components that take one (``Hub(clock=...)``): a token
expires when the test says so, without the test sleeping until it does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class Clock:
    """Starts at the real time; ``advance`` moves it forward. Call it for the time."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        """Move on by ``timedelta(**delta)`` (``days=1, seconds=1``); the new time."""
        self.now += timedelta(**delta)
        return self.now
