"""The catalog's tables: who may do what with which asset, and what happened.

Asset content and history live in lakeFS; the catalog keeps what lakeFS does not know about:
people, groups, tokens, folders and their shares, asset descriptions and labels, dataset
metadata and published versions, and the audit log.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: DateTime(timezone=True),
                                                     dict[str, Any]: JSON}


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(320), default="")
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Group(Base):
    __tablename__ = "groups"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    members: Mapped[list[Membership]] = relationship(cascade="all, delete-orphan")


class Membership(Base):
    __tablename__ = "memberships"
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"),
                                          primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    user: Mapped[User] = relationship()


class ApiToken(Base):
    """An API token; only its SHA-256 is stored, the secret is shown once at creation."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    user: Mapped[User] = relationship()


class Folder(Base):
    """Assets of one type under one owner; the unit of sharing."""

    __tablename__ = "folders"
    __table_args__ = (UniqueConstraint("owner", "kind", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    owner: Mapped[str] = mapped_column(String(63), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(63), default="")
    assets: Mapped[list[Asset]] = relationship(back_populates="folder",
                                               cascade="all, delete-orphan")
    shares: Mapped[list[Share]] = relationship(back_populates="folder",
                                               cascade="all, delete-orphan")


class Asset(Base):
    __tablename__ = "assets"
    __table_args__ = (UniqueConstraint("folder_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    folder_id: Mapped[int] = mapped_column(ForeignKey("folders.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    repository: Mapped[str] = mapped_column(String(63), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    labels: Mapped[list[str]] = mapped_column(JSON, default=list)
    readme: Mapped[str] = mapped_column(Text, default="")
    # Datasets: what the data is for, how it is laid out, how it splits; admins mark presets.
    task_type: Mapped[str | None] = mapped_column(String(64), default=None)
    data_format: Mapped[str | None] = mapped_column(String(32), default=None)
    split_mode: Mapped[str | None] = mapped_column(String(16), default=None)
    split_ratio: Mapped[float | None] = mapped_column(Float, default=None)
    test_set_path: Mapped[str | None] = mapped_column(String(1024), default=None)
    preset: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(63), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    folder: Mapped[Folder] = relationship(back_populates="assets")
    publications: Mapped[list[Publication]] = relationship(cascade="all, delete-orphan", lazy="selectin",
                                                           order_by="Publication.id")


class Publication(Base):
    """A published (immutable) dataset version: a tag that never moves."""

    __tablename__ = "publications"
    __table_args__ = (UniqueConstraint("asset_id", "tag"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    tag: Mapped[str] = mapped_column(String(128))
    commit_id: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_by: Mapped[str] = mapped_column(String(63))


class Share(Base):
    """A folder shared with a user, a group or everyone, as view / run / edit."""

    __tablename__ = "shares"
    __table_args__ = (UniqueConstraint("folder_id", "subject_type", "subject_name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    folder_id: Mapped[int] = mapped_column(ForeignKey("folders.id", ondelete="CASCADE"))
    subject_type: Mapped[str] = mapped_column(String(16))  # user | group | everyone
    subject_name: Mapped[str] = mapped_column(String(63), default="")
    # the subject itself: a share goes with its user or group, never to a later one of its name
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                                default=None, index=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"),
                                                 default=None, index=True)
    role: Mapped[str] = mapped_column(String(8))  # view | run | edit
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(63), default="")
    folder: Mapped[Folder] = relationship(back_populates="shares")
    user: Mapped[User | None] = relationship(lazy="joined")
    group: Mapped[Group | None] = relationship(lazy="joined")


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_at", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(63), default="", index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(1024), default="")
    outcome: Mapped[str] = mapped_column(String(16))  # ok | denied | error
    detail: Mapped[str] = mapped_column(Text, default="")


class Run(Base):
    """A job (train, continue-train, evaluate, merge, retrain) and what it produced.

    Registered by the server before any work starts (that is where ``run`` and ``edit``
    permissions are checked) and updated by the flow as it goes.
    """

    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_model_created", "model_path", "created_at"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # train | continue_train | evaluate | merge | retrain
    # pending | running | completed | failed | crashed
    state: Mapped[str] = mapped_column(String(16), default="pending")
    # The assets it names, by id (every look-up uses these; views show their current paths).
    # The *_path / *_ref strings are display copies: the paths when recorded, brought up to date
    # when the asset is deleted (hub._rows.keep_paths) and shown only from then on, when the id
    # is NULL (the run is detached, never attached to a later asset of that name).
    model_id: Mapped[int | None] = mapped_column(ForeignKey("assets.id", ondelete="SET NULL"),
                                                 default=None, index=True)
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("assets.id", ondelete="SET NULL"),
                                                   default=None, index=True)
    base_id: Mapped[int | None] = mapped_column(ForeignKey("assets.id", ondelete="SET NULL"),
                                                default=None, index=True)
    model_path: Mapped[str] = mapped_column(String(512), index=True)
    branch: Mapped[str] = mapped_column(String(256), default="")
    base_ref: Mapped[str] = mapped_column(String(600), default="")  # model ref continued or evaluated
    base_commit: Mapped[str] = mapped_column(String(64), default="")
    dataset_ref: Mapped[str] = mapped_column(String(600), default="")
    dataset_commit: Mapped[str] = mapped_column(String(64), default="")
    code_url: Mapped[str] = mapped_column(String(2048), default="")
    code_revision: Mapped[str] = mapped_column(String(256), default="")
    code_subpath: Mapped[str] = mapped_column(String(1024), default="")
    code_sha: Mapped[str] = mapped_column(String(64), default="")
    command: Mapped[str] = mapped_column(Text, default="")
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result_commit: Mapped[str] = mapped_column(String(64), default="")
    mlflow_run_id: Mapped[str] = mapped_column(String(64), default="")
    prefect_flow_run_id: Mapped[str] = mapped_column(String(64), default="")
    error: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(63), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    # what started it: person (CLI, SDK, Prefect UI), schedule (a follow's cron) or event (new data)
    trigger: Mapped[str] = mapped_column(String(16), default="person", server_default="person")
    # the user the job acts for (its git credentials and code mirror); "" = created_by
    owner: Mapped[str] = mapped_column(String(63), default="", server_default="")
    # what the job's settings came from: the model's .assethub/job.yaml at this commit of main
    # ("" = none used), the algorithm and its version ("" / 0 = none), the resources asked for
    settings_commit: Mapped[str] = mapped_column(String(64), default="", server_default="")
    algorithm: Mapped[str] = mapped_column(String(200), default="", server_default="")
    algorithm_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    resources: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    model: Mapped[Asset | None] = relationship(foreign_keys=[model_id], lazy="selectin")
    dataset: Mapped[Asset | None] = relationship(foreign_keys=[dataset_id], lazy="selectin")
    base: Mapped[Asset | None] = relationship(foreign_keys=[base_id], lazy="selectin")


class JobToken(Base):
    """A run's own API token: only its SHA-256 is stored. It acts as the run's owner, limited
    to what the run needs, and ends with the run (or at ``expires_at``).

    ``deferred`` tokens were minted for a run that a worker picks up (a follow's retrain, a
    run handed to a deployment): nobody saw their secret; the service user claims it once.
    """

    __tablename__ = "job_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    deferred: Mapped[bool] = mapped_column(Boolean, default=False)
    claimed_at: Mapped[datetime | None] = mapped_column(default=None)
    run: Mapped[Run] = relationship()


class ConsoleSession(Base):
    """A web console sign-in: the cookie's secret (SHA-256 only) bound to the API token the
    person signed in with. It ends at sign-out, at ``expires_at``, and with its token (revoked,
    expired, its user disabled): each request re-checks the token."""

    __tablename__ = "console_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    session_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    token: Mapped[ApiToken] = relationship()


class GitCredential(Base):
    """A user's credential for the Git repositories on one host, encrypted with the server's key.

    Never returned by the API: only released to a running job that acts for its user."""

    __tablename__ = "git_credentials"
    __table_args__ = (UniqueConstraint("user_name", "host"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_name: Mapped[str] = mapped_column(String(63), index=True)
    host: Mapped[str] = mapped_column(String(255))  # host[:port], lower case
    secret: Mapped[str] = mapped_column(Text)  # Fernet token of {"username": ..., "password": ...}
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Evaluation(Base):
    """Metrics of one model commit on one dataset commit (also stored in the model's files)."""

    __tablename__ = "evaluations"
    __table_args__ = (Index("ix_evaluations_model_commit", "model_path", "model_commit"),
                      Index("ix_evaluations_model_id_commit", "model_id", "model_commit"))
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # by id, as runs (see there): the path strings are display copies for once the asset is gone
    model_id: Mapped[int | None] = mapped_column(ForeignKey("assets.id", ondelete="SET NULL"),
                                                 default=None)
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("assets.id", ondelete="SET NULL"),
                                                   default=None, index=True)
    model_path: Mapped[str] = mapped_column(String(512))
    model_commit: Mapped[str] = mapped_column(String(64))
    dataset_ref: Mapped[str] = mapped_column(String(600))
    dataset_commit: Mapped[str] = mapped_column(String(64))
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    run_id: Mapped[str] = mapped_column(String(32), default="")  # the run that produced it
    created_by: Mapped[str] = mapped_column(String(63), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # recorded by a job of the model or an editor of it (rows from before that rule: false);
    # merge decisions use only trusted evaluations
    trusted: Mapped[bool] = mapped_column(Boolean, default=True, server_default=false())
    model: Mapped[Asset | None] = relationship(foreign_keys=[model_id], lazy="selectin")
    dataset: Mapped[Asset | None] = relationship(foreign_keys=[dataset_id], lazy="selectin")


class Follow(Base):
    """A model that retrains when a dataset's ``main`` moves (and how)."""

    __tablename__ = "follows"
    __table_args__ = (UniqueConstraint("model_id", "dataset_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    # a follow goes with its model or dataset; the paths are as recorded (views show current ones)
    model_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), index=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), index=True)
    model_path: Mapped[str] = mapped_column(String(512), index=True)
    dataset_path: Mapped[str] = mapped_column(String(512), index=True)
    # code_url, revision, subpath, metric, margin, params, schedule (cron) ...
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str] = mapped_column(String(63), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # why the follow stopped triggering retrains ("" = active), e.g. its owner lost a right
    paused: Mapped[str] = mapped_column(Text, default="", server_default="")
    model: Mapped[Asset] = relationship(foreign_keys=[model_id], lazy="selectin")
    dataset: Mapped[Asset] = relationship(foreign_keys=[dataset_id], lazy="selectin")


class Service(Base):
    """A model version served over HTTP."""

    __tablename__ = "services"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    # the model served, by id (NULL once it is deleted); model_ref is a display copy (as runs)
    model_id: Mapped[int | None] = mapped_column(ForeignKey("assets.id", ondelete="SET NULL"),
                                                 default=None, index=True)
    model_ref: Mapped[str] = mapped_column(String(600))
    model_commit: Mapped[str] = mapped_column(String(64))
    replicas: Mapped[int] = mapped_column(Integer, default=1)
    host: Mapped[str] = mapped_column(String(255), default="127.0.0.1")
    port: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16), default="starting")  # starting|running|stopped|failed
    target: Mapped[str] = mapped_column(String(16), default="local")  # local | kubernetes
    training_run: Mapped[str] = mapped_column(String(64), default="")  # MLflow run id behind the model
    detail: Mapped[str] = mapped_column(Text, default="")
    last_health_at: Mapped[datetime | None] = mapped_column(default=None)
    last_health_ok: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(63), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    model: Mapped[Asset | None] = relationship(lazy="selectin")


class ServiceEvent(Base):
    """Something that happened to a service: a replica restarted, health failed or came back,
    an alert fired or resolved (shown by ``services show``)."""

    __tablename__ = "service_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))  # replica_restart | health_failed | health_ok | alert_*
    detail: Mapped[str] = mapped_column(Text, default="")


class ServiceAlert(Base):
    """An alert rule of a service: fires when ``metric`` over the last ``window_seconds`` is
    above ``threshold``, resolves when it is no longer; calls ``webhook`` (if any) both times."""

    __tablename__ = "service_alerts"
    __table_args__ = (UniqueConstraint("service_id", "metric"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    metric: Mapped[str] = mapped_column(String(16))  # error_rate | p95
    threshold: Mapped[float] = mapped_column(Float)
    window_seconds: Mapped[int] = mapped_column(Integer)
    webhook: Mapped[str] = mapped_column(Text, default="")  # secret-adjacent: never shown whole
    firing: Mapped[bool] = mapped_column(Boolean, default=False)
    value: Mapped[float | None] = mapped_column(Float, default=None)  # at the last change
    changed_at: Mapped[datetime | None] = mapped_column(default=None)
    created_by: Mapped[str] = mapped_column(String(63), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ServiceUsage(Base):
    """How many requests a service answered for the model version it serves, kept after the
    service is deleted (``ended_at``): a version's lineage lists them."""

    __tablename__ = "service_usage"
    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(Integer, index=True)  # no key: outlives the service
    service_name: Mapped[str] = mapped_column(String(63))
    model_id: Mapped[int | None] = mapped_column(ForeignKey("assets.id", ondelete="SET NULL"),
                                                 default=None, index=True)
    model_commit: Mapped[str] = mapped_column(String(64))
    requests: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    first_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)


class Algorithm(Base):
    """A named, shared training-code entry of the algorithm library (``<task type>/<name>``);
    what it runs is in its versions."""

    __tablename__ = "algorithms"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    owner: Mapped[str] = mapped_column(String(63), index=True)
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    preset: Mapped[bool] = mapped_column(Boolean, default=False)  # an admin's, visible to all
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    versions: Mapped[list[AlgorithmVersion]] = relationship(
        back_populates="algorithm", cascade="all, delete-orphan", order_by="AlgorithmVersion.version")
    shares: Mapped[list[AlgorithmShare]] = relationship(cascade="all, delete-orphan", lazy="selectin")


class AlgorithmVersion(Base):
    """One version (1, 2, ...) of an algorithm: the code, its declared params and commands."""

    __tablename__ = "algorithm_versions"
    __table_args__ = (UniqueConstraint("algorithm_id", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    algorithm_id: Mapped[int] = mapped_column(ForeignKey("algorithms.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    code_url: Mapped[str] = mapped_column(String(2048))  # without credentials
    code_revision: Mapped[str] = mapped_column(String(256), default="")
    code_subpath: Mapped[str] = mapped_column(String(1024), default="")
    task_type: Mapped[str] = mapped_column(String(64), default="")
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # declarations (to_spec)
    train_command: Mapped[str] = mapped_column(Text, default="")
    evaluate_command: Mapped[str] = mapped_column(Text, default="")
    predict_command: Mapped[str] = mapped_column(Text, default="")
    resources: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    description: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(63), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    algorithm: Mapped[Algorithm] = relationship(back_populates="versions")


class AlgorithmShare(Base):
    """An algorithm shared with a user, a group or everyone: ``view`` (see and use) or ``edit``
    (update, share, delete)."""

    __tablename__ = "algorithm_shares"
    __table_args__ = (UniqueConstraint("algorithm_id", "subject_type", "subject_name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    algorithm_id: Mapped[int] = mapped_column(ForeignKey("algorithms.id", ondelete="CASCADE"))
    subject_type: Mapped[str] = mapped_column(String(16))  # user | group | everyone
    subject_name: Mapped[str] = mapped_column(String(63), default="")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                                default=None, index=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"),
                                                 default=None, index=True)
    role: Mapped[str] = mapped_column(String(8))  # view | edit
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(63), default="")
    user: Mapped[User | None] = relationship(lazy="joined")
    group: Mapped[Group | None] = relationship(lazy="joined")


class Upload(Base):
    """An upload in flight: files stream into a lakeFS transaction (``txn``, the dict of
    :class:`assethub.storage.Transaction`) until it is committed or aborted. In the catalog, not
    in one server's memory or home, so any replica on the catalog takes a file or the commit."""

    __tablename__ = "uploads"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_name: Mapped[str] = mapped_column(String(63), index=True)
    job_run_id: Mapped[str | None] = mapped_column(String(64), default=None)
    txn: Mapped[dict[str, Any]] = mapped_column(JSON)
    # set once committed: a commit retried on another replica (the first one's answer was lost
    # with it) answers with this commit instead of failing on the finished transaction
    commit_id: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DatasetStatsRow(Base):
    """A dataset version's statistics (:class:`assethub.wire._stats.DatasetStats` as JSON),
    computed once per commit: keyed by repository and commit id, with the dataset settings they
    were computed under (``rule``: format and split rule; other settings compute them again)."""

    __tablename__ = "dataset_stats"
    __table_args__ = (UniqueConstraint("repository", "commit_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    repository: Mapped[str] = mapped_column(String(63))
    commit_id: Mapped[str] = mapped_column(String(64))
    rule: Mapped[str] = mapped_column(String(1100))
    stats: Mapped[dict[str, Any]] = mapped_column(JSON)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)
