"""Waiting for something the test can observe, instead of sleeping for a while and hoping.

    run = wait_for("the retrain to finish", lambda: finished(hub, commit), timeout=900)

``check`` is called until it returns something truthy (which is returned) or the timeout passes
(an AssertionError naming ``what``, and the last value seen). A check may raise to give up early
(a process it waits on died). Polling with a deadline, never a fixed sleep standing in for an event.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(what: str, check: Callable[[], T], timeout: float, every: float = 0.1) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what} (last: {value!r})")
        time.sleep(every)
