"""The error protocol's table (assethub.errors.WIRE_ERRORS): it covers every public error, and an
error turned into a body and back is the same class with the same fields. No server here: the
real server and SDK are in tests/integration/test_error_protocol.py."""

from __future__ import annotations

import json

import pytest

from assethub import errors
from tests._error_samples import PUBLIC, SAMPLES, fields_of


def test_the_table_covers_every_public_error_once() -> None:
    assert {row.cls for row in errors.WIRE_ERRORS} == set(PUBLIC)
    assert len(errors.WIRE_ERRORS) == len(PUBLIC)
    assert len({row.code for row in errors.WIRE_ERRORS}) == len(PUBLIC)
    assert set(SAMPLES) == set(PUBLIC)
    assert {c.__name__ for c in PUBLIC} <= set(errors.__all__)


@pytest.mark.parametrize("cls", PUBLIC, ids=lambda c: c.__name__)
def test_the_fields_of_each_row_are_the_attributes_of_its_class(cls: type[errors.AssetHubError]) -> None:
    sample = SAMPLES[cls]
    row = errors.wire_error(sample)
    assert row.cls is cls
    assert 400 <= row.status <= 599
    for name, default in row.fields.items():
        assert hasattr(sample, name), f"{cls.__name__} has no attribute {name}"
        if (cls, name) != (errors.AssetNotFoundError, "what"):  # always "asset"
            assert getattr(sample, name) != default, name  # so that the round trip shows it


@pytest.mark.parametrize("cls", PUBLIC, ids=lambda c: c.__name__)
def test_an_error_survives_the_wire_as_the_same_class_with_the_same_fields(
        cls: type[errors.AssetHubError]) -> None:
    sample = SAMPLES[cls]
    status, body = errors.to_wire(sample)
    back = errors.from_wire(json.loads(json.dumps(body)))
    assert type(back) is cls
    assert status == errors.wire_error(sample).status
    assert fields_of(back) == fields_of(sample)
    if cls is errors.AssetHubError:  # the server's own failure: its cause stays in its log
        assert "secret detail" not in json.dumps(body)
    else:
        assert str(back) == str(sample)


def test_a_body_without_the_fields_gives_their_defaults() -> None:
    back = errors.from_wire({"type": "PortInUseError", "message": "taken"})
    assert isinstance(back, errors.PortInUseError) and isinstance(back, OSError)
    assert (back.name, back.port, str(back)) == ("", 0, "taken")
    conflict = errors.from_wire({"type": "MergeConflictError", "message": "m"})
    assert isinstance(conflict, errors.MergeConflictError) and conflict.paths == []


def test_unknown_names_and_other_exceptions() -> None:
    assert errors.from_wire({"type": "RequestValidationError", "message": "m"}) is None
    assert errors.from_wire({"message": "m"}) is None
    status, body = errors.to_wire(KeyError("internal detail"))
    assert status == 500 and body["type"] == "InternalError" and "internal detail" not in body["message"]

    class Private(errors.PortInUseError):  # a subclass the table does not list: its nearest row
        pass

    assert errors.to_wire(Private("taken", port=1))[1]["type"] == "PortInUseError"
