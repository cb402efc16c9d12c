"""``assethub cat`` refuses to write a binary file to a terminal unless forced (as ``bat`` and
``git show`` do), and writes any file anywhere else; with a fake SDK client (no server)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from assethub import cli_data
from assethub.cli import app

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(100)
TEXT = b"a,b\n1,2\n" * 10


class _Terminal(io.BytesIO):
    def isatty(self) -> bool:
        return True


class _Client:
    def __init__(self, content: bytes) -> None:
        self.content = content
        self.closed_early = False

    def __enter__(self) -> _Client:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def cat(self, ref: str, path: str) -> Iterator[bytes]:
        try:
            for i in range(0, len(self.content), 16):
                yield self.content[i:i + 16]
        except GeneratorExit:
            self.closed_early = True
            raise


def _cat(monkeypatch: pytest.MonkeyPatch, content: bytes, out: io.BytesIO,
         *args: str) -> tuple[Any, _Client]:
    client = _Client(content)
    monkeypatch.setattr(cli_data, "_client", lambda: client)
    monkeypatch.setattr(cli_data.typer, "get_binary_stream", lambda name: out)
    result = CliRunner().invoke(app, ["cat", "a/dataset/f/d:v1", "x.png", *args])
    return result, client


def test_binary_to_a_terminal_is_refused_unless_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    out = _Terminal()
    result, client = _cat(monkeypatch, PNG, out)
    assert result.exit_code == 2 and "binary" in result.stderr and "--force" in result.stderr
    assert out.getvalue() == b"" and client.closed_early  # nothing written, the read stopped

    out = _Terminal()
    result, _ = _cat(monkeypatch, PNG, out, "--force")
    assert result.exit_code == 0 and out.getvalue() == PNG


def test_text_to_a_terminal_and_anything_to_a_pipe_is_written_whole(
        monkeypatch: pytest.MonkeyPatch) -> None:
    out = _Terminal()
    assert _cat(monkeypatch, TEXT, out)[0].exit_code == 0 and out.getvalue() == TEXT
    out = io.BytesIO()
    assert _cat(monkeypatch, PNG, out)[0].exit_code == 0 and out.getvalue() == PNG


def test_a_nul_in_the_first_8000_bytes_makes_a_file_binary() -> None:
    assert cli_data.looks_binary(b"abc\x00def")
    assert not cli_data.looks_binary("héllo, wörld\n".encode())
    assert not cli_data.looks_binary(b"x" * 8000 + b"\x00")  # as git: only the start is sniffed
