"""The log gate: after the suite, the logs of every component the tests started (lakeFS, the
Asset Hub server, MLflow, the Prefect server and worker, service supervisors and replicas) are
read, and any error or traceback fails the run unless ALLOWED says why it is expected.

A green test run proves little if a component logged an error no test looked at (that is how a
Prefect scheduler that failed every minute went unnoticed). Entries of ALLOWED are narrow: a
file pattern, a regular expression for the error line and its exception, and the reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

# Which files are component logs (paths relative to the session's base temporary directory).
LOG_FILES = ("*.out", "*.log", "*.err")

# A line that reports an error, in the formats of our components: Python logging (Prefect's
# "| ERROR |", uvicorn's "ERROR:", gunicorn's "[ERROR]", ours "ERROR name:"), lakeFS (logrus
# text "level=error" or JSON "level":"error"), SeaweedFS (glog: "E1130 14:05:28.001166 file.go:12 ..."
# for an error, F for a fatal one), Go panics.
_ERROR = re.compile(r"(\|\s*(ERROR|CRITICAL)\s*\||^(ERROR|CRITICAL)[: ]|\[(ERROR|CRITICAL)\]|"
                    r"^[EF]\d{4} \d\d:\d\d:\d\d\.\d+ +(\d+ )?\S+\.go:\d+\]? |"
                    r"\s(ERROR|CRITICAL)\s|level=(error|fatal|panic)\b|\"level\":\s*\"(error|fatal|panic)\"|"
                    r"^panic: |^fatal error: )")
_TRACEBACK = "Traceback (most recent call last):"


@dataclass(frozen=True)
class Allowed:
    files: str  # fnmatch pattern on the path relative to the base directory
    pattern: str  # re.search on the entry: the error line plus its exception's last line
    why: str


# Keep this short; every entry says which test provokes the error and why it is expected.
ALLOWED: tuple[Allowed, ...] = (
    # test_deployments: a deployment run with a code revision that does not exist must fail,
    # and the worker's flow run reports it three times (the task, the flow, the engine).
    Allowed("*prefect-worker/server.out",
            r"^\S+ \| ERROR +\| (Task run 'fetch_code-\w+' - Finished in state Failed|"
            r"Flow run '[\w-]+' - (Encountered exception during execution|Engine execution exited with "
            r"unexpected exception)).*CodeFetchError.? ?.?revision 'no-such-revision' not found",
            "the bad revision that test_run_deployment_trains_a_new_model_version sends"),
    # test_deployments: a Prefect-UI run of the service user on a folder nobody shared with it
    # must fail before any work, saying which share grants it (the task, the flow, the engine).
    Allowed("*prefect-worker/server.out",
            r"^\S+ \| ERROR +\| (Task run 'open_run-\w+' - Finished in state Failed|"
            r"Flow run '[\w-]+' - (Encountered exception during execution|Engine execution exited with "
            r"unexpected exception)).*ForbiddenError.? ?.?this job runs as the worker's service user "
            r"'prefect'.*deployer/model/ungranted/net",
            "the ungranted model test_a_prefect_ui_run_acts_as_the_service_user_and_needs_a_grant trains"),
    # test_atomicity: a direct S3 put to a protected main must be refused; lakeFS logs the refusal.
    Allowed("*lakefs/lakefs.*",
            r'level=error msg="could not update metadata".* error="cannot write to protected branch".* '
            r"path=x\.txt ref=main ",
            "test_main_refuses_direct_writes puts main/x.txt through the S3 gateway"),
    # test_atomicity: the uploader is SIGKILLed mid-upload; a PUT it had in flight to the
    # transaction branch ends early and lakeFS logs the truncated body.
    Allowed("*lakefs/lakefs.*",
            r'level=error msg="could not write request body to block adapter".* error="unexpected EOF'
            r'.* path=data/part-\d{4}\.bin ref=_tx-',
            "test_killed_upload_leaves_main_untouched kills the uploader while its PUTs are in flight"),
    # test_deployments kills the Prefect worker (worker lost, worker killed mid-run): the
    # Prefect server's end of the worker's websocket channel fails on the dead connection.
    Allowed("*prefect/server.out",
            r"\| ERROR +\| (prefect\.server\.api\.workers - Worker channel setup failed|"
            r"uvicorn\.error - Exception in ASGI application).*starlette\.websockets\.WebSocketDisconnected",
            "the worker-killing tests in test_deployments.py close the worker's channel abruptly"),
    Allowed("*prefect/server.out",
            r"\| ERROR +\| asyncio - Task exception was never retrieved \| future: <Task .*"
            r"WorkerChannelConnection\._(send|receive)_loop\(\).*(ClientDisconnected|WebSocketDisconnect)",
            "the same: the channel's send loop to the killed worker"),
    # The distributed profile (test_distributed.py). SeaweedFS's S3 gateway at every start: it has
    # no STS signing key (we give it static identities only, no STS), and says so as an error.
    Allowed("*seaweedfs/weed.out",
            r"^E\d{4} [\d:.]+ +\d* ?s3api_server\.go:\d+\]? ?Failed to load IAM configuration: "
            r"no signing key found for STS service",
            "SeaweedFS's S3 gateway starts without STS (static identities only)"),
    # test_object_store_down_...: SeaweedFS is stopped and a download asks lakeFS for an object.
    Allowed("distributed-home*/lakefs/lakefs.out",
            r'level=error msg="(failed to get S3 object bucket assethub-data/repos/|API call returned '
            r'status internal server error).*GetObject.*connect: connection refused',
            "test_object_store_down_a_download_answers_503_naming_the_storage stops the object store"),
    # The same test starts SeaweedFS again: its filer replays its own metadata-change log (kept
    # in a volume) to the S3 gateway's subscription before the volume server has re-registered
    # with the master, cannot find that volume, and skips the replay (the next line, a warning).
    # The replay carries filer config changes; no object of ours is read from it.
    Allowed("distributed-home*/seaweedfs/weed.out",
            r"^E\d{4} [\d:.]+ +\d* ?filechunk_manifest\.go:\d+\]? ?operation LookupFileId [\d,a-f]+ "
            r"failed, err: volume \d+ not found",
            "SeaweedFS restarted by test_object_store_down_...: its log replay ran before its volume"),
    # test_stack_stop: `up` on a taken port; the server cannot bind (what the test provokes), and
    # the Prefect server, stopped again while it was still starting, fails its own shutdown.
    Allowed("test_up_that_fails_stops_what*/server/server.log",
            r"^ERROR: +\[Errno 98\] error while attempting to bind on address .*address already in use",
            "test_up_that_fails_stops_what_it_started_and_says_why takes the server's port"),
    Allowed("test_up_that_fails_stops_what*/prefect/server.out",
            r"\| ERROR +\| uvicorn\.error - (Traceback .*AssertionError: Reactive triggers not started|"
            r"Application shutdown failed\. Exiting\.)",
            "the same test stops the Prefect server while it is still starting"),
    # Not provoked by a test: on an overloaded machine (the suite with other work beside it) the
    # Prefect server's SQLite write lock can be held longer than a background task's five tries.
    # The task only records that a worker polled its queue (the queue's "ready" status and
    # event); runs, states and schedules are written elsewhere and a later poll records it again.
    Allowed("*prefect/server.out",
            r"\| ERROR +\| docket\.dependencies - .* mark_work_queues_ready\(.*database is locked",
            "Prefect's work-queue poll record gave up on the SQLite lock under load (harmless)"),
    # The same lock, seen in the clean-clone run of 2026-11-30 (the demo ran beside the suite):
    # the task-run recorder's flush is retried ("0 dropped" is the condition), and a flow run's
    # heartbeat event the worker could not deliver meanwhile is only a liveness signal (the next
    # heartbeat follows; runs and states are not events).
    Allowed("*prefect/server.out",
            r"\| ERROR +\| prefect\.server\.services\.task_run_recorder - Error flushing \d+ events "
            r"\(\d+ to retry, 0 dropped\).*database is locked",
            "Prefect's task-run recorder retried a flush after the SQLite lock under load (nothing dropped)"),
    # The same lock met by a state proposal (SQLite cannot wait when a reading transaction turns
    # writer): Prefect logs it, answers 503 (is_client_retryable_exception) and its client retries
    # (seen in test_replicas under load 10, which passed).
    Allowed("*prefect/server.out",
            r"\| ERROR +\| prefect\.server - Encountered error during state validation .*"
            r"sqlite3\.OperationalError: database is locked",
            "a Prefect state proposal met its SQLite lock under load (503, retried)"),
    Allowed("*prefect-worker/server.out",
            r"\| ERROR +\| GlobalEventLoopThread \| prefect\._internal\.concurrency - Service "
            r"'EventsWorker' failed to process item Event\(.*event='prefect\.flow-run\.heartbeat'",
            "a flow-run heartbeat event not delivered while Prefect's SQLite was locked under load"),
)


@dataclass(frozen=True)
class Entry:
    file: Path
    line: int
    text: str  # the error line, and for a traceback its exception line(s)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.text[:600]}"


_CHAIN = ("During handling", "The above exception")


def _in_traceback(line: str) -> bool:
    return not line.strip() or line.strip() == _TRACEBACK or line.startswith((" ", "\t", *_CHAIN))


def _entries(path: Path) -> Iterator[Entry]:
    lines = path.read_text(errors="replace").splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        starts_traceback = line.rstrip().endswith(_TRACEBACK)  # alone, or a log record's message
        if not (starts_traceback or _ERROR.search(line)):
            i += 1
            continue
        first = i
        text = [line.strip()]
        i += 1
        if i < len(lines) and lines[i].startswith("future: <Task"):
            text.append(lines[i].strip()[:300])  # asyncio's "never retrieved": which task it was
            i += 1
        # the traceback that is (or follows) the hit, up to its exception line(s), chained ones too
        if starts_traceback or (i < len(lines) and lines[i].strip() == _TRACEBACK):
            while i < len(lines):
                if _in_traceback(lines[i]):
                    i += 1
                    continue
                text.append(lines[i].strip())  # the exception: "module.Error: message"
                i += 1
                nxt = i
                while nxt < len(lines) and not lines[nxt].strip():
                    nxt += 1
                after = lines[nxt] if nxt < len(lines) else ""
                if not (after.startswith(_CHAIN) or after.strip() == _TRACEBACK):
                    break  # the next log record: a chained exception would continue the entry
        yield Entry(path, first + 1, " | ".join(text))


def scan(base: Path, allowed: Iterable[Allowed] = ALLOWED) -> tuple[list[Entry], list[Entry]]:
    """(errors not allowed, errors allowed) in the component logs under ``base``."""
    rules = list(allowed)
    bad: list[Entry] = []
    ok: list[Entry] = []
    files = sorted({p for pattern in LOG_FILES for p in base.rglob(pattern) if p.is_file()})
    for path in files:
        rel = str(path.relative_to(base))
        for entry in _entries(path):
            if any(fnmatch(rel, r.files) and re.search(r.pattern, entry.text) for r in rules):
                ok.append(entry)
            else:
                bad.append(entry)
    return bad, ok
