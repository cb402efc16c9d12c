"""Run a shell command line so that it does not outlive the job's process (Linux).

``python supervise.py <parent pid> <command>``: run as the leader of a new process group (the
job starts it with ``start_new_session``), it runs ``/bin/sh -c <command>`` in that group and
exits as the command did; ``python supervise.py <parent pid> -- <argv...>`` runs ``argv`` instead
(the sandbox's ``bwrap ...``, whose own processes die with it: ``--die-with-parent``).
When the parent dies, even by SIGKILL, the kernel sends this process SIGTERM
(``PR_SET_PDEATHSIG``), and it kills the whole group: the command and whatever that started.
Standard library only: it runs isolated (``python -I``), outside Asset Hub's packages.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from typing import Any

PR_SET_PDEATHSIG = 1


def _end_group(*_: Any) -> None:
    os.killpg(0, signal.SIGKILL)  # this process too


def main(argv: list[str]) -> int:
    parent = int(argv[0])
    command = argv[2:] if argv[1] == "--" else ["/bin/sh", "-c", argv[1]]
    signal.signal(signal.SIGTERM, _end_group)
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != parent:  # it died before the signal was armed
        _end_group()
    code = subprocess.Popen(command).wait()
    if code < 0:  # killed by a signal: so is this process, for the job to read it the same way
        if -code not in (signal.SIGKILL, signal.SIGSTOP):  # these have no handler to reset
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
