"""Dataset statistics per version, cached in the catalog, and the sample-level diff of two versions.

Statistics are computed on the first ask for a commit (the server reads the commit's files
through its content cache: hard links, no second copy) and kept in the table ``dataset_stats``
keyed by repository and commit id: a commit never changes, so neither do its statistics — unless
the dataset's format or split rule is changed, which computes them again under the new rule.
The computation itself is :mod:`assethub.datastats` (no storage, no catalog).

Both need ``view`` on the dataset.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from assethub import datastats
from assethub._json import jsonable
from assethub.catalog import Catalog
from assethub.catalog.models import DatasetStatsRow
from assethub.errors import InvalidReferenceError, NotAllowedError, NotFoundError
from assethub.hub.identity import Principal
from assethub.hub.permissions import Permissions
from assethub.refs import AssetPath, AssetRef
from assethub.storage import Storage
from assethub.wire._stats import DatasetStats, SampleDiff

__all__ = ["DatasetStatistics"]

_KEY_MAX = 200


@dataclass(frozen=True, slots=True)
class _Dataset:
    repository: str
    data_format: str | None
    split_mode: str | None
    split_ratio: float | None
    test_set_path: str | None

    @property
    def rule(self) -> str:
        """What the statistics depend on besides the files (part of the cache's key)."""
        return f"{self.data_format or 'dir'}; {datastats.split_rule(*self.split)[1]}"

    @property
    def split(self) -> tuple[str | None, float | None, str | None]:
        return self.split_mode, self.split_ratio, self.test_set_path


class DatasetStatistics:
    """Statistics of dataset versions and sample-level diffs, for callers with ``view``."""

    def __init__(self, catalog: Catalog, storage: Storage, permissions: Permissions, *,
                 tmp_dir: Path) -> None:
        self.catalog = catalog
        self.storage = storage
        self.permissions = permissions
        self.tmp_dir = tmp_dir
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def _dataset(self, who: Principal, path: AssetPath, what: str) -> _Dataset:
        with self.catalog.session() as s:
            a = self.permissions.asset(s, who, path, "view")
            if not path.is_dataset:
                raise NotAllowedError(f"{what} are for datasets; {path} is a model")
            return _Dataset(a.repository, a.data_format, a.split_mode, a.split_ratio,
                            a.test_set_path)

    def _lock(self, key: tuple[str, str]) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def _cached(self, ds: _Dataset, commit: str) -> DatasetStats | None:
        with self.catalog.session() as s:
            row = s.scalar(select(DatasetStatsRow).where(DatasetStatsRow.repository == ds.repository,
                                                         DatasetStatsRow.commit_id == commit))
            if row is None or row.rule != ds.rule:
                return None
            return datastats.stats_from_json(row.stats, cached=True)

    def stats(self, who: Principal, ref: AssetRef | str, *, compute: bool = True,
              progress: Callable[[int, int], None] | None = None) -> DatasetStats:
        """The statistics of the dataset version at ``ref``: from the catalog, or computed now
        (the first ask for its commit) and kept. ``compute=False``: only if already kept
        (NotFoundError otherwise), to tell a caller the first ask takes a while. ``progress(done,
        total)``: files read so far, once the version is downloaded."""
        r = self.permissions.ref(who, ref, "view")
        ds = self._dataset(who, r.path, "statistics")
        commit = self.storage.resolve(r)
        found = self._cached(ds, commit)
        if found is not None:
            return found
        if not compute:
            raise NotFoundError("statistics", f"{r.path}@{commit}",
                                "not computed yet: the first ask computes them")
        with self._lock((ds.repository, commit)):  # one computation per commit on this server
            found = self._cached(ds, commit)
            if found is not None:
                return found
            with tempfile.TemporaryDirectory(dir=self.tmp_dir, prefix="stats-") as tmp:
                root = Path(tmp) / "data"
                self.storage.download(r.path.at(commit), root)  # through the cache: hard links
                result = datastats.compute(root, asset=str(r.path), commit_id=commit,
                                           data_format=ds.data_format, split_mode=ds.split_mode,
                                           split_ratio=ds.split_ratio,
                                           test_set_path=ds.test_set_path, progress=progress)
            self._keep(ds, commit, result)
            return result

    def _keep(self, ds: _Dataset, commit: str, result: DatasetStats) -> None:
        data = jsonable(result)
        data.pop("cached", None)
        try:
            with self.catalog.session() as s:
                row = s.scalar(select(DatasetStatsRow).where(
                    DatasetStatsRow.repository == ds.repository, DatasetStatsRow.commit_id == commit))
                if row is None:
                    s.add(DatasetStatsRow(repository=ds.repository, commit_id=commit, rule=ds.rule,
                                          stats=data, seconds=result.seconds))
                else:  # computed under other dataset settings: these replace them
                    row.rule, row.stats, row.seconds = ds.rule, data, result.seconds
        except IntegrityError:
            pass  # another server kept them first: the same numbers

    def sample_diff(self, who: Principal, left: AssetRef | str, right: AssetRef | str, *,
                    key: str | None = None) -> SampleDiff:
        """Samples of two versions of one dataset compared per split and class (added, removed,
        changed, moved between classes), and the rows of their tables (by ``key`` or by
        content)."""
        lr = self.permissions.ref(who, left, "view")
        rr = AssetRef.coerce(right)
        if rr.path != lr.path:
            raise InvalidReferenceError(f"a sample diff compares two versions of one dataset, not "
                                        f"{lr.path} and {rr.path}", part="ref", value=str(rr))
        if key is not None and not (0 < len(key) <= _KEY_MAX):
            raise InvalidReferenceError(f"key must be a column name of 1 to {_KEY_MAX} characters",
                                        part="key", value=key[:40])
        ds = self._dataset(who, lr.path, "sample diffs")
        lc, rc = self.storage.resolve(lr), self.storage.resolve(rr)
        split, _ = datastats.split_rule(*ds.split)
        lo = {o.path: o.sha256 or o.checksum for o in self.storage.list_objects(lr.path.at(lc))}
        ro = {o.path: o.sha256 or o.checksum for o in self.storage.list_objects(rr.path.at(rc))}
        totals, groups, moves = datastats.diff_samples(
            datastats.file_samples(lo.items(), data_format=ds.data_format, split=split),
            datastats.file_samples(ro.items(), data_format=ds.data_format, split=split))
        tables = []
        changed = sorted(p for p in lo.keys() | ro.keys()
                         if datastats.is_table(p) and lo.get(p) != ro.get(p))
        if changed:
            with tempfile.TemporaryDirectory(dir=self.tmp_dir, prefix="sdiff-") as tmp:
                for i, p in enumerate(changed):
                    sides: list[Path | None] = []
                    for side, commit, present in (("l", lc, lo), ("r", rc, ro)):
                        if p not in present:
                            sides.append(None)
                            continue
                        dest = Path(tmp) / f"{side}{i}"
                        self.storage.download(lr.path.at(commit), dest, prefix=p)
                        sides.append(dest / p.rsplit("/", 1)[-1])
                    tables.append(datastats.diff_table(p, sides[0], sides[1], key=key))
        return SampleDiff(lc, rc, ds.data_format or "dir", totals["added"], totals["removed"],
                          totals["changed"], totals["moved"], totals["renamed"], groups, moves,
                          tuple(tables))
