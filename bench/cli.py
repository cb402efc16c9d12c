"""How long an ``assethub`` command takes from the shell, against lakectl and a Python floor.

    uv run python bench/cli.py [--rounds 5]

Wall time of ``assethub whoami``, ``assethub ls <asset>:main`` and ``assethub --help``, each a
new process as a user runs it, against lakectl doing the nearest call (``lakectl repo list``,
``lakectl fs ls lakefs://<repo>/main/``, ``lakectl --help``) and against
``python -c "import httpx, typer, rich"``: the least a Python CLI built on these libraries can
take before it does anything. Targets: each command <= 0.8 s and <= 1.5x the floor.

Runs on its own stack: lakeFS in a private home (its own port and data, stopped at the end) and
the Asset Hub server as its own process, as in production. Every command runs ``--rounds``
times, the commands taking turns so that the machine's noise falls on all of them alike; the
median wall time is reported, with the fastest run and the median CPU time of the process
(less disturbed by other work on a shared machine).

Modules load from cached bytecode, as after ``pip install``: in a private cache
(``PYTHONPYCACHEPREFIX``, written by an untimed first run of each command; the environment is
not touched), also where ``PYTHONDONTWRITEBYTECODE`` is set. Without cached bytecode every run
compiles every module it imports, which takes longer than the rest (see bench/README.md).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api import start_server  # bench/api.py: the same server, started the same way

from assethub.client import Client
from infra import lakefs

TARGET_SECONDS = 0.8
TARGET_FLOOR_RATIO = 1.5
FLOOR = [sys.executable, "-c", "import httpx, typer, rich"]


@dataclass
class Case:
    name: str
    argv: list[str]
    env: dict[str, str]
    expect: str = ""  # must appear in the output: the command did its work
    times: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def run(self, env: dict[str, str]) -> None:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(self.argv, env={**self.env, **env}, capture_output=True, text=True,
                              check=False)
        elapsed = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0 or self.expect not in proc.stdout:
            raise SystemExit(f"{self.name} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        self.times.append(elapsed)
        self.cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def best(self) -> float:
        return min(self.times)

    @property
    def median_cpu(self) -> float:
        return statistics.median(self.cpu)


def measure(cases: dict[str, Case], rounds: int, env: dict[str, str]) -> tuple[float, float]:
    """Run every case ``rounds`` times (taking turns) and print the table; (slowest median,
    worst ratio to the floor) of our commands."""
    for case in cases.values():  # once each, untimed: the bytecode cache, the page cache
        case.run(env)
        case.times.clear()
        case.cpu.clear()
    for _ in range(rounds):
        for case in cases.values():
            case.run(env)
    floor = cases["floor"]
    print(f"\nseconds per command: median wall time of {rounds} runs, fastest run, median CPU time")
    print(f"{'command':28} {'median':>7} {'fastest':>7} {'CPU':>6}   {'lakectl':>7} {'x lakectl':>9}"
          f"   x floor: {'median':>6} {'fastest':>7} {'CPU':>5}  target")
    rows = [("floor", None), ("whoami", "repo list"), ("ls", "fs ls"), ("help", "lakectl help")]
    slowest = worst = 0.0
    for ours, peer in rows:
        a = cases[ours]
        line = f"{a.name[:28]:28} {a.median:7.3f} {a.best:7.3f} {a.median_cpu:6.3f}"
        if peer is not None:
            b = cases[peer]
            ratio = a.median / floor.median
            slowest, worst = max(slowest, a.median), max(worst, ratio)
            met = a.median <= TARGET_SECONDS and ratio <= TARGET_FLOOR_RATIO
            line += (f"   {b.median:7.3f} {a.median / b.median:8.1f}x   {'':9}{ratio:5.2f}x "
                     f"{a.best / floor.best:6.2f}x {a.median_cpu / floor.median_cpu:4.2f}x  "
                     f"{'met' if met else 'NOT met'}")
        print(line)
    if "floor+get" in cases:  # the floor of a Python CLI that also makes one HTTP request
        base = cases["floor+get"]
        print(f"{base.name[:28]:28} {base.median:7.3f} {base.best:7.3f} {base.median_cpu:6.3f}   "
              "(informational: a request loads httpcore and h2, which `import httpx` defers)")
        print("  x floor+GET (median):", ", ".join(
            f"{cases[k].name.removeprefix('assethub ')} {cases[k].median / base.median:.2f}x"
            for k in ("whoami", "ls", "help")))
    print("lakectl ran:", "; ".join(cases[k].name for k in ("repo list", "fs ls", "lakectl help")),
          "(<asset> has 20 files in 4 folders)")
    return slowest, worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="runs of each command (median)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="assethub-bench-cli-"))
    os.environ["ASSETHUB_HOME"] = str(work / "lakefs-home")  # a lakeFS of our own
    lake = lakefs.start()
    proc = None
    try:
        proc, url, token = start_server(lake, work / "home", timeout=120)
        hub = Client(url, token, cache_dir=work / "cache")
        hub.create_folder("admin/model/bench-cli")
        asset = "admin/model/bench-cli/net"
        repo = hub.create_asset(asset).repository
        files = work / "files"
        for i in range(20):
            (files / f"d{i % 4}").mkdir(parents=True, exist_ok=True)
            (files / f"d{i % 4}" / f"f{i}.bin").write_bytes(os.urandom(1024))
        hub.upload(f"{asset}:main", files, message="20 files")
        hub.close()

        cli_env = {**os.environ, "ASSETHUB_URL": url, "ASSETHUB_TOKEN": token,
                   "ASSETHUB_CONFIG": str(work / "config.json"), "ASSETHUB_HOME": str(work / "cli"),
                   "COLUMNS": "120"}
        lakectl_env = {**os.environ, **lake.lakectl_env(), "HOME": str(work / "lakectl-home")}
        assethub = str(Path(sys.executable).with_name("assethub"))
        lakectl = str(lake.lakectl)
        cases = {
            "floor": Case("floor: import httpx,typer,rich", FLOOR, dict(os.environ)),
            "floor+get": Case("floor + one GET (httpx.get)", [
                sys.executable, "-c", "import sys, httpx, typer, rich; "
                "httpx.get(sys.argv[1]).raise_for_status(); print('ok')", f"{url}/api/v1/health"],
                dict(os.environ), expect="ok"),
            "whoami": Case("assethub whoami", [assethub, "whoami"], cli_env, expect="admin"),
            "repo list": Case("lakectl repo list", [lakectl, "repo", "list"], lakectl_env, expect=repo),
            "ls": Case("assethub ls <asset>:main", [assethub, "ls", f"{asset}:main"], cli_env,
                       expect="f19.bin"),
            "fs ls": Case("lakectl fs ls --recursive lakefs://<repo>/main/",
                          [lakectl, "fs", "ls", "--recursive", f"lakefs://{repo}/main/"], lakectl_env,
                          expect="f19.bin"),
            "help": Case("assethub --help", [assethub, "--help"], cli_env, expect="whoami"),
            "lakectl help": Case("lakectl --help", [lakectl, "--help"], lakectl_env, expect="repo"),
        }
        # an empty PYTHONDONTWRITEBYTECODE counts as unset
        slowest, worst = measure(cases, args.rounds, {"PYTHONPYCACHEPREFIX": str(work / "pyc"),
                                                      "PYTHONDONTWRITEBYTECODE": ""})
        print(f"\nRESULT slowest {slowest:.3f} s (target <= {TARGET_SECONDS} s), worst "
              f"{worst:.2f}x the floor (target <= {TARGET_FLOOR_RATIO}x)")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        lakefs.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
