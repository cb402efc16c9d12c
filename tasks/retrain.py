"""The steps of a retrain that decide whether it has anything to do: what the followed dataset's
``main`` is, what the model's ``main`` was trained on, and the branch that claims the work, so
that there is one retrain per dataset commit however often it is triggered."""

from __future__ import annotations

from dataclasses import dataclass

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from assethub.errors import AlreadyExistsError, AssetHubError
from assethub.refs import AssetPath, AssetRef
from tasks.env import NETWORK, client

BRANCH_PREFIX = "retrain-"


def branch_for(dataset_commit: str) -> str:
    """The branch of the retrain on ``dataset_commit``: ``retrain-<commit[:12]>``."""
    return BRANCH_PREFIX + dataset_commit[:12]


@dataclass(frozen=True)
class RetrainPlan:
    dataset: str  # the followed dataset asset
    dataset_commit: str  # its main, now
    main_commit: str  # the model's main, now
    has_model: bool  # main holds an MLflow model (else the retrain trains afresh)
    branch: str  # where the retrain goes
    up_to_date: str = ""  # why there is nothing to do, or ""


@task(name="plan_retrain", **NETWORK)
def plan_retrain(model: str, dataset: str, at: str = "") -> RetrainPlan:
    """Where ``model``'s main and ``dataset``'s main are, and whether main was trained on that
    dataset commit already (a ref given with ``dataset`` is ignored: main is what is followed;
    ``at``: the dataset commit a registered retrain run pinned)."""
    hub = client()
    path = AssetPath.coerce(model)
    data = AssetRef.coerce(dataset).path
    dataset_commit = at or hub.resolve(data.at("main"))
    main_commit = hub.resolve(path.at("main"))
    has_model = any(o.path == "model/MLmodel"
                    for o in hub.list_objects(path.at(main_commit), prefix="model/"))
    up_to_date = ""
    if has_model:
        lin = hub.lineage(path.at(main_commit)).lineage
        if lin is not None and lin.dataset_commit == dataset_commit:
            up_to_date = f"main was trained on the dataset's main ({dataset_commit[:12]}) already"
    return RetrainPlan(str(data), dataset_commit, main_commit, has_model, branch_for(dataset_commit),
                       up_to_date)


# No retries: after a lost answer to a create that went through, a retry would find the branch
# and take this run's own claim for someone else's.
@task(name="claim_branch", cache_policy=NO_CACHE)
def claim_branch(model: str, branch: str, source: str) -> bool:
    """Create ``branch`` at ``source``, atomically, as the claim on a piece of work; False when
    it exists already (the work is claimed)."""
    try:
        client().create_branch(model, branch, source=source)
    except AlreadyExistsError:
        return False
    return True


@task(name="release_claim", cache_policy=NO_CACHE)
def release_claim(model: str, branch: str, claimed_at: str) -> None:
    """Drop the claim of a retrain that committed nothing, so that it can run again."""
    try:
        hub = client()
        if hub.resolve(f"{model}:{branch}") == claimed_at:
            hub.delete_branch(model, branch)
    except AssetHubError as e:
        get_run_logger().warning("could not remove branch %s after the failure: %s", branch, e)
