"""Exports (``POST /assets/<model>/export``): the job started (standard library only)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExportJob:
    """An export handed to the worker: its run (``assethub runs --id``), its flow run and
    deployment, the version exported and the branch the ONNX model will be committed to."""

    run_id: str
    flow_run_id: str
    deployment: str
    source: str
    branch: str
