"""`make test`'s pytest: the suite as two sessions side by side (``pytest --part 1`` and ``--part 2``,
tests/conftest.py PART_TWO), each with its own stacks and its own log gate.

One session alone kept the two cores about a third busy (it mostly waits on jobs, servers and
browsers), so two overlap most of that waiting. Part 1 prints as it goes; part 2 writes
``test-artifacts/pytest-part2.log``, printed whole once part 1 is done. Last come both verdicts,
each part's tail from its log gate / short summary on, so that a CI log's end shows what failed.

    uv run python scripts/test_parts.py [pytest options...]
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ARTIFACTS = Path("test-artifacts")
# where a session's verdict starts in its output: the log gate, the short summary, the final line
_VERDICT = re.compile(r"log gate: |short test summary info|^=+ .*\b(passed|failed|errors?|no tests ran)\b")


def verdict(text: str) -> str:
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if _VERDICT.search(line):
            return "\n".join(lines[i:])
    return "\n".join(lines[-5:])


def main(argv: list[str]) -> int:
    ARTIFACTS.mkdir(exist_ok=True)
    one_log, two_log = ARTIFACTS / "pytest-part1.log", ARTIFACTS / "pytest-part2.log"
    pytest = [sys.executable, "-m", "pytest"]
    with open(two_log, "wb") as out:
        two = subprocess.Popen([*pytest, "--part", "2", *argv], stdout=out, stderr=subprocess.STDOUT)
        try:
            one = subprocess.Popen([*pytest, "--part", "1", "--color=no", *argv], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT)
            assert one.stdout is not None
            with open(one_log, "wb") as copy:
                for chunk in iter(lambda: one.stdout.read1(65536), b""):  # type: ignore[union-attr]
                    sys.stdout.buffer.write(chunk)
                    sys.stdout.flush()
                    copy.write(chunk)
            one_rc = one.wait()
        except BaseException:
            two.terminate()
            raise
        two_rc = two.wait()
    print("\n=== pytest --part 2 (ran side by side with part 1) ===", flush=True)
    sys.stdout.write(two_log.read_text(errors="replace"))
    print("\n=== verdicts ===")
    for name, log, rc in (("part 1", one_log, one_rc), ("part 2", two_log, two_rc)):
        print(f"--- pytest --part {name[-1]}: exit {rc}")
        print(verdict(log.read_text(errors="replace")))
    return 0 if one_rc == two_rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
