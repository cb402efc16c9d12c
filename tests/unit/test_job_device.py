"""DEVICE / ASSETHUB_DEVICE / ASSETHUB_GPUS: from the work pool's setting, else the machine's GPUs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from assethub import sandbox
from assethub.errors import JobSpecError
from assethub.runtime import ContractError, JobContext, Split, context, environment
from tasks.entrypoint import job_device


def _dev(tmp_path: Path, *names: str) -> Path:
    tmp_path.mkdir(exist_ok=True)
    for name in names:
        (tmp_path / name).touch()
    return tmp_path


def test_the_setting_wins_else_the_machines_gpus_decide(tmp_path: Path) -> None:
    none, two = _dev(tmp_path / "a"), _dev(tmp_path / "b", "nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm")
    assert job_device({}, none) == ("cpu", 0)
    assert job_device({}, two) == ("cuda", 2)  # nvidiactl and nvidia-uvm are no GPUs
    assert job_device({"ASSETHUB_DEVICE": "cpu"}, two) == ("cpu", 0)
    assert job_device({"ASSETHUB_DEVICE": "CUDA"}, none) == ("cuda", 1)  # the gpu pool says so
    assert job_device({"CUDA_VISIBLE_DEVICES": "0,3,5"}, none) == ("cuda", 3)
    # the gpu pool's allotment (its template's gpu_count) is the count the job gets
    assert job_device({"ASSETHUB_DEVICE": "cuda", "ASSETHUB_GPUS": "4"}, two) == ("cuda", 4)
    assert job_device({"ASSETHUB_DEVICE": "cpu", "ASSETHUB_GPUS": "4"}, two) == ("cpu", 0)
    for bad in ("0", "two", "-1"):
        with pytest.raises(JobSpecError, match="ASSETHUB_GPUS"):
            job_device({"ASSETHUB_DEVICE": "cuda", "ASSETHUB_GPUS": bad}, two)
    for hidden in ("", "-1"):
        assert job_device({"CUDA_VISIBLE_DEVICES": hidden}, two) == ("cpu", 0)
    with pytest.raises(JobSpecError, match="use cuda or cpu"):
        job_device({"ASSETHUB_DEVICE": "tpu"}, none)


def test_the_contract_carries_the_device_and_a_param_named_device_stays_the_codes(tmp_path: Path) -> None:
    ctx = JobContext(job="train", dataset_dir=tmp_path, output_dir=tmp_path / "out", base_model_dir=None,
                     params={"epochs": 2}, split=Split(ratio=0.8), metrics_file=tmp_path / "m.json",
                     device="cuda", gpus=2)
    env = environment(ctx)
    assert (env["DEVICE"], env["ASSETHUB_DEVICE"], env["ASSETHUB_GPUS"], env["EPOCHS"]) == (
        "cuda", "cuda", "2", "2")
    back = context(env)
    assert (back.device, back.gpus) == ("cuda", 2)
    mine = environment(dataclasses.replace(ctx, params={"device": "mps"}))
    assert mine["DEVICE"] == "mps" and mine["ASSETHUB_DEVICE"] == "cuda"
    plain = context({"ASSETHUB_DATASET_DIR": str(tmp_path), "ASSETHUB_OUTPUT_DIR": str(tmp_path)})
    assert (plain.device, plain.gpus) == ("cpu", 0)
    with pytest.raises(ContractError, match="ASSETHUB_DEVICE"):
        context({**env, "ASSETHUB_DEVICE": "tpu"})


def test_gpu_devices_are_bound_into_the_sandbox_as_devices(tmp_path: Path) -> None:
    dev = _dev(tmp_path, "nvidia0", "nvidiactl")
    mounts = sandbox.gpu_mounts(dev)
    assert [m.source.name for m in mounts] == ["nvidia0", "nvidiactl"] and all(m.device for m in mounts)
    argv = sandbox.bwrap_argv(["true"], mounts=mounts, cwd="/")
    assert argv[argv.index("--dev-bind") + 1] == str(dev / "nvidia0")
    assert sandbox.gpu_mounts(tmp_path / "missing") == []
