"""One adjustment to Prefect's flow engine for the flows of this package.

A synchronous flow run keeps a heartbeat thread that sleeps in 1 s steps, and the engine joins
it when the run ends (``prefect.flow_engine._send_heartbeats``, Prefect 3.8): every flow run,
and each sub-flow of a retrain, waited 0.5 s on average for a thread with nothing left to do
(measured with ``bench/flow_overhead.py``). Prefect's async engine does not join it
(``join_on_exit=False``); the thread is a daemon, sees the stop flag within a second, and
sends no heartbeat for a run in a final state. The sync engine does the same here.
Heartbeats while the flow runs are unchanged (Prefect's crash detection relies on them).
"""

from __future__ import annotations

import functools
import inspect
from typing import Any


def heartbeats_end_without_waiting() -> None:
    from prefect import flow_engine

    send = getattr(flow_engine, "_send_heartbeats", None)
    if send is None or getattr(send, "assethub_no_join", False):
        return
    if "join_on_exit" not in inspect.signature(send).parameters:  # another Prefect: leave it
        return

    @functools.wraps(send)
    def no_join(engine: Any, join_on_exit: bool = True) -> Any:
        return send(engine, join_on_exit=False)

    no_join.assethub_no_join = True  # type: ignore[attr-defined]
    flow_engine._send_heartbeats = no_join
