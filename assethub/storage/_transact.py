"""Atomic writes: a hidden temporary branch, committed and squash-merged on success, deleted
on failure (as ``Branch.transact()`` of the lakeFS Python wrapper).

Every write of Asset Hub goes through here: :meth:`Transactions.transact` in one process
(commit, upload, dataset import, the follows' action file), and its three steps
:meth:`~Transactions.begin` / :meth:`~Transactions.finish` / :meth:`~Transactions.abort` when
a write spans several requests (the server's streamed uploads keep a :class:`Transaction`).
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

import lakefs_sdk

from assethub.errors import (
    AssetHubError,
    ConcurrentUpdateError,
    InvalidReferenceError,
    MergeConflictError,
    NothingToCommitError,
)
from assethub.refs import AssetPath, AssetRef, validate_object_path
from assethub.storage import _policy
from assethub.storage._lakefs import PAGE, LakeFS, Override, Retry, commit_info
from assethub.wire import CommitInfo

TX_PREFIX = "_tx-"
EMPTY = "empty"  # a write's base meaning "no files" (a dataset version started from nothing)
BASED_ON = "assethub.based_on"  # commit metadata: the version a write started from
BASED_ON_COMMIT = "assethub.based_on_commit"  # ... and that version's commit ("" for empty)
Strategy = Literal["source-wins", "dest-wins"]
_MERGE_ATTEMPTS = 8


@dataclass(frozen=True, slots=True)
class Transaction:
    """An open write: files go to ``branch`` (hidden, temporary) until finished or aborted.

    Plain strings only, so a server can keep it between the requests of one upload.
    """

    ref: str  # the target, "<asset>:<branch>"
    repo: str
    branch: str
    head: str  # the target's head when the write began
    parent_commit: str | None = None
    # what the write started from when not the target's head: a tag, a commit or EMPTY, and
    # that version's commit id ("" for EMPTY); the branch holds its content from the start
    base: str | None = None
    base_commit: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {"ref": self.ref, "repo": self.repo, "branch": self.branch, "head": self.head,
                "parent_commit": self.parent_commit, "base": self.base,
                "base_commit": self.base_commit}

    @classmethod
    def from_dict(cls, d: Mapping[str, str | None]) -> Transaction:
        return cls(str(d["ref"]), str(d["repo"]), str(d["branch"]), str(d["head"]),
                   d.get("parent_commit"), d.get("base"), d.get("base_commit"))


class TransactionWriter:
    """What :meth:`Transactions.transact` yields: write and delete files on the temporary
    branch; ``result`` is the merged commit once the ``with`` block has ended."""

    def __init__(self, owner: Transactions, txn: Transaction) -> None:
        self._owner = owner
        self.transaction = txn
        self.result: CommitInfo | None = None

    def upload(self, files: Mapping[str, Path]) -> None:
        """Write local files (object path -> local file) in parallel."""
        for path in files:
            _policy.user_path(validate_object_path(path), "write")
        txn = self.transaction
        self._owner._write_objects(txn.repo, txn.branch, files, label=txn.ref)

    def delete(self, paths: Sequence[str]) -> None:
        for path in paths:
            _policy.user_path(validate_object_path(path), "delete")
        self._owner._delete_objects(self.transaction, paths)


def _tx_name() -> str:
    # the start time is in the name, so cleanup_transactions() can tell a dead writer's branch
    return f"{TX_PREFIX}{int(time.time())}-{uuid.uuid4().hex[:10]}"


class Transactions:
    """The transaction half of :class:`assethub.storage.Storage`."""

    if TYPE_CHECKING:
        lakefs: LakeFS

        def repository(self, asset: AssetPath | str) -> str: ...
        def _get_commit(self, repo: str, r: AssetRef) -> CommitInfo: ...
        def _write_objects(self, repo: str, branch: str, adds: Mapping[str, Path], *,
                           label: str) -> None: ...

    @contextmanager
    def transact(self, ref: AssetRef | str, *, message: str,
                 metadata: Mapping[str, str] | None = None,
                 parent_commit: str | None = None,
                 base: str | None = None) -> Iterator[TransactionWriter]:
        """Write on a temporary branch of ``ref``; commit and merge it when the block ends.

        If the block raises, or the commit or merge fails, the temporary branch is deleted
        and the target stays as it was. With ``parent_commit`` the merge is refused if the
        target has moved past it (optimistic concurrency). With ``base`` (see :meth:`begin`)
        the write starts from that version's files instead of the target's.
        """
        txn = self.begin(ref, parent_commit=parent_commit, base=base)
        writer = TransactionWriter(self, txn)
        try:
            yield writer
        except BaseException:
            self.abort(txn)
            raise
        writer.result = self.finish(txn, message=message, metadata=metadata)

    def begin(self, ref: AssetRef | str, *, parent_commit: str | None = None,
              base: str | None = None) -> Transaction:
        """Open a write on branch ``ref``: a hidden temporary branch at its current head.

        With ``base`` (a tag or commit of the asset, or :data:`EMPTY`) the temporary branch
        holds that version's files instead (lakeFS actions stay as at the head): the write
        makes a new version of ``ref`` from an older one, and the history keeps everything."""
        r = AssetRef.coerce(ref)
        _policy.writable_branch(r)
        repo = self.repository(r.path)
        tx = _tx_name()
        with self.lakefs.translate(asset=r.path, ref=str(r), what="branch"):
            # branching from the name returns the head it branched at: one call, no race
            head = str(self.lakefs.api.branches_api.create_branch(
                repo, lakefs_sdk.BranchCreation(name=tx, source=r.ref, hidden=True)))
        txn = Transaction(str(r), repo, tx, head, parent_commit)
        if parent_commit is not None and not head.startswith(parent_commit):
            self.abort(txn)
            raise ConcurrentUpdateError(str(r), parent_commit, head)
        if base is not None:
            try:
                txn = self._start_from(txn, r, base)
            except BaseException:
                self.abort(txn)
                raise
        return txn

    def _start_from(self, txn: Transaction, r: AssetRef, base: str) -> Transaction:
        """Make the transaction's branch hold the files of ``base`` (staged or committed on the
        temporary branch only): EMPTY stages the deletion of every file; a version is one
        commit of its tree (lakeFS's ``source_metarange``: no file is copied)."""
        api = self.lakefs.api
        if base == EMPTY:
            paths = [str(o["path"]) for o in self._ls(txn.repo, txn.branch)
                     if not _policy.is_reserved(str(o["path"]))]
            self._delete_objects(txn, paths)
            return dataclasses.replace(txn, base=EMPTY, base_commit="")
        at = AssetRef(r.path, base)  # checks the ref's form
        with self.lakefs.translate(asset=r.path, ref=str(at), what="ref"):
            found = api.commits_api.get_commit(txn.repo, at.ref)
        with self.lakefs.translate(asset=r.path, ref=txn.ref, what="commit"):
            api.commits_api.commit(
                txn.repo, txn.branch,
                lakefs_sdk.CommitCreation(message=f"Start from {base}", allow_empty=True),
                source_metarange=found.meta_range_id)
        # lakeFS actions (the follows' hook) are configuration of the asset, not of a version:
        # they stay as they are at the head
        now = {str(o["path"]): o for o in self._ls(txn.repo, txn.head, _policy.ACTIONS_PREFIX)}
        then = {str(o["path"]): o for o in self._ls(txn.repo, txn.branch, _policy.ACTIONS_PREFIX)}
        with self.lakefs.translate(asset=r.path, ref=txn.ref, what="copy"):
            for path, o in now.items():
                if then.get(path, {}).get("checksum") != o.get("checksum"):
                    api.objects_api.copy_object(txn.repo, txn.branch, path,
                                                lakefs_sdk.ObjectCopyCreation(src_path=path,
                                                                              src_ref=txn.head))
        self._delete_objects(txn, [p for p in then if p not in now])
        return dataclasses.replace(txn, base=base, base_commit=str(found.id))

    def _differs(self, repo: str, left: str, right: str) -> bool:
        """Whether two refs hold different files (lakeFS actions included)."""
        first = next(iter(self.lakefs.pages(
            self.lakefs.json_page, f"/repositories/{repo}/refs/{quote(left, safe='')}/diff/"
            f"{quote(right, safe='')}", ref=right, what="diff", type="two_dot", amount=1)), None)
        return first is not None

    def _ls(self, repo: str, ref: str, prefix: str = "") -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {"prefix": prefix} if prefix else {}
        return self.lakefs.pages(self.lakefs.json_page,
                                 f"/repositories/{repo}/refs/{quote(ref, safe='')}/objects/ls",
                                 ref=ref, **params)

    def abort(self, txn: Transaction, *, wait: bool = True) -> None:
        """Drop a write: its temporary branch goes, the target never saw it."""
        if wait:
            self._drop_branch(txn.repo, txn.branch)
        else:  # after a merge nothing depends on the branch any more: do not make callers wait
            threading.Thread(target=self._drop_branch, args=(txn.repo, txn.branch),
                             daemon=True).start()

    def _drop_branch(self, repo: str, branch: str) -> None:
        # cleanup_transactions() removes what could not be removed now
        with suppress(AssetHubError, OSError), self.lakefs.translate(ref=branch, what="branch"):
            self.lakefs.api.branches_api.delete_branch(repo, branch, force=True)

    def _delete_objects(self, txn: Transaction, paths: Sequence[str]) -> None:
        for i in range(0, len(paths), PAGE):
            with self.lakefs.translate(ref=txn.ref, what="delete"):
                self.lakefs.api.objects_api.delete_objects(
                    txn.repo, txn.branch, lakefs_sdk.PathList(paths=list(paths[i:i + PAGE])))

    def finish(self, txn: Transaction, *, message: str,
               metadata: Mapping[str, str] | None = None,
               deletes: Sequence[str] = ()) -> CommitInfo:
        """Commit what a transaction wrote and squash-merge it into its target, or nothing."""
        r = AssetRef.parse(txn.ref)
        try:
            if not message.strip():
                raise InvalidReferenceError("a commit needs a message", part="message",
                                            value=message)
            self._delete_objects(txn, [_policy.user_path(validate_object_path(p), "delete")
                                       for p in deletes])
            meta = {k: str(v) for k, v in (metadata or {}).items()}
            if r.path.is_dataset:  # the version graph: what each dataset version started from
                meta[BASED_ON] = txn.base if txn.base is not None else txn.head
                meta[BASED_ON_COMMIT] = (txn.base_commit or "") if txn.base is not None else txn.head

            def no_changes(status: int, msg: str) -> BaseException | None:
                return NothingToCommitError(txn.ref) if "no changes" in msg.lower() else None

            with self.lakefs.translate(asset=r.path, ref=txn.ref, what="commit",
                                       on={400: no_changes}):
                self.lakefs.api.commits_api.commit(
                    txn.repo, txn.branch, lakefs_sdk.CommitCreation(
                        message=message, metadata=meta,
                        # a restore changes nothing on top of the version it starts from
                        allow_empty=txn.base is not None))
            if txn.base is not None and not self._differs(txn.repo, txn.head, txn.branch):
                raise NothingToCommitError(txn.ref)  # e.g. restoring what the branch holds
            if txn.parent_commit is not None:
                now = self._get_commit(txn.repo, r).id
                if now != txn.head:
                    raise ConcurrentUpdateError(txn.ref, txn.parent_commit, now)
            result = self._merge(txn.repo, txn.branch, r.ref, message=message, metadata=meta,
                                 squash=True, label=(txn.ref, txn.ref), asset=r.path)
            if txn.parent_commit is not None and result.parents[:1] != (txn.head,):
                # Another writer got in between the check above and the merge: take ours back
                # out (nothing of theirs is lost) and report the race.
                self._revert(txn.repo, r.ref, result.id, asset=r.path)
                raise ConcurrentUpdateError(txn.ref, txn.parent_commit, result.parents[0])
        except BaseException:
            self.abort(txn)
            raise
        self.abort(txn, wait=False)
        return result

    def _merge(self, repo: str, source: str, dest: str, *, message: str,
               metadata: Mapping[str, str], squash: bool, label: tuple[str, str],
               asset: AssetPath, strategy: Strategy | None = None) -> CommitInfo:
        body = lakefs_sdk.Merge(message=message, metadata=dict(metadata), strategy=strategy,
                                squash_merge=squash)
        api = self.lakefs.api

        def overrides(may_retry: bool) -> dict[int, Override]:
            def busy(status: int, msg: str) -> BaseException | None:
                return Retry() if may_retry else None  # another writer holds the branch

            def conflict(status: int, msg: str) -> BaseException | None:
                if "conflict" in msg.lower():
                    return MergeConflictError(label[0], label[1],
                                              self._conflicting_paths(repo, source, dest))
                return busy(status, msg)

            def no_changes(status: int, msg: str) -> BaseException | None:
                return NothingToCommitError(label[1]) if "no changes" in msg.lower() else None

            return {409: conflict, 400: no_changes, 423: busy, 429: busy, 503: busy}

        for attempt in range(_MERGE_ATTEMPTS):
            try:
                with self.lakefs.translate(asset=asset, ref=label[1], what="merge",
                                           on=overrides(attempt < _MERGE_ATTEMPTS - 1)):
                    result = api.refs_api.merge_into_branch(repo, source, dest, merge=body)
                break
            except Retry:
                time.sleep(0.05 * 2 ** attempt)
        with self.lakefs.translate(asset=asset, ref=label[1], what="merge"):
            return commit_info(api.commits_api.get_commit(repo, result.reference))

    def _conflicting_paths(self, repo: str, source: str, dest: str) -> list[str]:
        api = self.lakefs.api
        with self.lakefs.translate(ref=dest, what="merge"):
            base = api.refs_api.find_merge_base(repo, source, dest).base_commit_id

        def changed(ref: str) -> set[str]:
            return {d.path for d in self.lakefs.pages(api.refs_api.diff_refs, repo, base, ref,
                                                      type="two_dot")}

        return sorted(changed(source) & changed(dest))

    def _revert(self, repo: str, branch: str, commit_id: str, *, asset: AssetPath) -> None:
        """Undo one commit of ``branch`` through a temporary branch (main takes only merges)."""
        tx = _tx_name()
        api = self.lakefs.api
        with self.lakefs.translate(asset=asset, ref=branch, what="revert"):
            api.branches_api.create_branch(
                repo, lakefs_sdk.BranchCreation(name=tx, source=branch, hidden=True))
            try:
                api.branches_api.revert_branch(
                    repo, tx, lakefs_sdk.RevertCreation(ref=commit_id, parent_number=0))
                api.refs_api.merge_into_branch(
                    repo, tx, branch, merge=lakefs_sdk.Merge(
                        message=f"Revert {commit_id[:12]}: its expected parent had moved",
                        squash_merge=True))
            finally:
                self._drop_branch(repo, tx)

    def _tx_branches(self, repo: str, path: AssetPath) -> Iterator[str]:
        for b in self.lakefs.pages(self.lakefs.api.branches_api.list_branches, repo,
                                   prefix=TX_PREFIX, show_hidden=True, asset=path):
            yield b.id

    def cleanup_transactions(self, asset: AssetPath | str, *,
                             older_than: float = 3600.0) -> list[str]:
        """Delete temporary branches left by writers that died; returns their names."""
        path = AssetPath.coerce(asset)
        repo = self.repository(path)
        now = time.time()
        removed = []
        for name in self._tx_branches(repo, path):
            try:
                started = int(name[len(TX_PREFIX):].split("-")[0])
            except ValueError:
                continue
            if now - started >= older_than:
                with self.lakefs.translate(asset=path, ref=name, what="branch"):
                    self.lakefs.api.branches_api.delete_branch(repo, name, force=True)
                removed.append(name)
        return removed

    def transaction_branches(self, asset: AssetPath | str) -> list[str]:
        """Names of the temporary write branches that exist now (for tests and cleanup)."""
        path = AssetPath.coerce(asset)
        return list(self._tx_branches(self.repository(path), path))
