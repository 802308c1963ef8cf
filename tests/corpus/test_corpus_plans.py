"""Plans on registries written by Feast's CLI, not by the portal (issue 16).

The corpus repos (`feast init -t local`, the shapes repo) were applied with `feast apply`. Uploading such a
repo as it is, unchanged, plans nothing; a one-field edit plans exactly that field, and as consequences the
objects that embed a copy of it; Feast's refusals and dangling references are refused at plan time; and the
worker writes exactly the planned protos, compared with `feast registry-dump` after the apply.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from catalog import feast_gateway
from catalog.exceptions import InvalidInput
from catalog.models import CatalogObject, ChangeRequest, ModelConsumer, ObjectVersion
from catalog.services.change_requests import change_request_approve, change_request_create, change_request_revise
from catalog.services.sync import registry_sync
from jobs.services.apply import change_request_apply_start
from tests.corpus.conftest import Corpus, cli_copy
from tests.governance.conftest import make_user, wait_for, wait_for_catalog

pytestmark = pytest.mark.django_db

LOCAL = "corpus_local"
DEFINITIONS = "feature_definitions.py"  # the local template's definitions file


def repo_archive(
    path: Path, edits: dict[str, tuple[str, str]] | None = None, extra: dict[str, str] | None = None
) -> bytes:
    """A zip of the repo folder as a team has it (data, YAMLs, registry files and all), with text edits
    {file: (old, new)} applied to the copies in the archive and `extra` files added."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(path.rglob("*")):
            if not file.is_file() or "__pycache__" in file.parts:
                continue
            rel = file.relative_to(path).as_posix()
            data = file.read_bytes()
            if edits and rel in edits:
                old, new = edits[rel]
                text = data.decode()
                assert text.count(old) == 1, f"{old!r} is not once in {rel}"
                data = text.replace(old, new).encode()
            zf.writestr(f"{path.name}/{rel}", data)
        for rel, text in (extra or {}).items():
            zf.writestr(f"{path.name}/{rel}", text)
    return buf.getvalue()


# An on-demand view without a schema: Feast infers it at apply by running the transformation.
SCHEMALESS_ON_DEMAND = """
import pandas as pd
from feast.on_demand_feature_view import on_demand_feature_view

from feature_definitions import driver_stats_fv


@on_demand_feature_view(sources=[driver_stats_fv], schema=[])
def conv_rate_doubled(inputs: pd.DataFrame) -> pd.DataFrame:
    df = pd.DataFrame()
    df["conv_rate_x2"] = inputs["conv_rate"] * 2.0
    return df
"""


def author() -> User:
    return User.objects.filter(username="pia").first() or make_user("pia", "proposer")


def upload(project: str, archive: bytes, mode: str = "full") -> ChangeRequest:
    return change_request_create(
        actor=author(), project=project, title="upload", upload=(archive, "repo.zip"), mode=mode, submit=True
    )


def planned(cr: ChangeRequest) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["name"]): o for o in cr.plan["objects"]}


@pytest.mark.parametrize("project", [LOCAL, "corpus_postgres", "shapes"])
def test_an_unchanged_cli_applied_repo_plans_nothing(corpus: Corpus, project: str) -> None:
    registry_sync(trigger="test")
    with pytest.raises(InvalidInput, match="the upload matches the registry: nothing would change"):
        upload(project, repo_archive(Path(corpus[project].path)))
    assert not ChangeRequest.objects.exists()


def test_an_unchanged_repo_on_a_file_registry_plans_nothing(corpus: Corpus, tmp_path: Path, settings: Any) -> None:
    """The template as `feast init` leaves it: a file registry, applied by the CLI."""
    copy = cli_copy(corpus[LOCAL], tmp_path / LOCAL)
    settings.FEAST_REPO_PATHS = [copy.path]
    settings.FEAST_FS_YAML = "feature_store.cli.yaml"
    registry_sync(trigger="test")
    with pytest.raises(InvalidInput, match="the upload matches the registry: nothing would change"):
        upload(LOCAL, repo_archive(Path(copy.path)))


def test_a_feature_description_edit_plans_that_field_and_the_services_that_embed_it(corpus: Corpus) -> None:
    registry_sync(trigger="test")
    edit = {DEFINITIONS: ('description="Average daily trips"', 'description="Average trips per day"')}
    cr = upload(LOCAL, repo_archive(Path(corpus[LOCAL].path), edit))
    objects = planned(cr)
    assert cr.severity == "safe"
    view = objects.pop(("feature_view", "driver_hourly_stats"))
    assert view["severity"] == "safe"
    assert [(c["path"], c["before"], c["after"]) for c in view["changes"]] == [
        ("features[avg_daily_trips].description", "Average daily trips", "Average trips per day")
    ]
    assert [i["rule"] for i in view["items"]] == ["object.documentation"]
    # The services and on-demand views that project the feature carry a copy of its spec: consequences, shown
    # as following from the view, never as changes of their own.
    assert {k for k in objects} == {
        ("feature_service", "driver_activity_v2"),  # v1 selects conv_rate only: it has no copy to change
        ("feature_view", "transformed_conv_rate"),
    }
    follows = {k: o["follows_from"] for k, o in objects.items()}
    assert follows == {
        ("feature_service", "driver_activity_v2"): [
            "feature_view:driver_hourly_stats",
            "feature_view:transformed_conv_rate",  # it embeds the on-demand view's copy too
        ],
        ("feature_view", "transformed_conv_rate"): ["feature_view:driver_hourly_stats"],
    }
    for key, obj in objects.items():
        assert obj["severity"] == "safe", (key, obj["items"])
        assert [i["rule"] for i in obj["items"]] == ["object.follows_from"], key


def test_removing_a_used_feature_is_breaking_and_names_services_and_models(corpus: Corpus) -> None:
    registry_sync(trigger="test")
    service = CatalogObject.objects.get(project__name="shapes", kind="feature_service", name="mixed_service")
    ModelConsumer.objects.create(service=service, name="churn-model", version="7", owner="ml@example.com")
    cr = change_request_create(
        actor=author(),
        project="shapes",
        title="drop visits",
        edits=[{"op": "remove_field", "view": "user_profile", "field": "visits"}],
    )
    assert cr.severity == "breaking"
    objects = planned(cr)
    assert set(objects) == {
        ("feature_view", "user_profile"),
        ("feature_service", "profile_service"),
        ("feature_service", "mixed_service"),
    }
    # breaking where a registered model reads the field; risky where no model is registered yet
    assert {k: o["severity"] for k, o in objects.items()} == {
        ("feature_view", "user_profile"): "breaking",
        ("feature_service", "mixed_service"): "breaking",
        ("feature_service", "profile_service"): "risky",
    }
    assert cr.plan["impact"]["services"] == ["mixed_service", "profile_service"]
    assert [(m["name"], m["service"]) for m in cr.plan["impact"]["models"]] == [("churn-model", "mixed_service")]


def test_a_dangling_service_reference_is_refused_at_plan_time(corpus: Corpus) -> None:
    registry_sync(trigger="test")
    ghost = (
        "from feature_definitions import driver_stats_fv\n"
        "from feast import FeatureService\n\n"
        "ghost_service = FeatureService(name='ghost_service', features=[driver_stats_fv])\n"
        "ghost_service.feature_view_projections[0].name = 'no_such_view'\n"
    )
    archive = repo_archive(Path(corpus[LOCAL].path), extra={"ghost.py": ghost})
    with pytest.raises(InvalidInput, match="'no_such_view', which neither this change nor the registry has"):
        upload(LOCAL, archive, mode="partial")
    assert not ChangeRequest.objects.exists()


# Each makes the plan invalid with its own message, naming the object and what it refers to.
DANGLING = {
    "a service reads a feature its view lacks": (
        """
from feature_definitions import driver_stats_fv
from feast import FeatureService, Field
from feast.types import Float32

ghost_service = FeatureService(name="ghost_service", features=[driver_stats_fv[["conv_rate"]]])
ghost_service.feature_view_projections[0].features = [Field(name="no_such_feature", dtype=Float32)]
""",
        "feature service 'ghost_service' reads 'no_such_feature' from 'driver_hourly_stats', which has no such field",
    ),
    "a view's entity is in neither the upload nor the registry": (
        """
from datetime import timedelta
from feature_definitions import driver_stats_source
from feast import Entity, FeatureView, Field
from feast.types import Float32, Int64

ghost_view = FeatureView(
    name="ghost_view",
    entities=[Entity(name="ghost_entity", join_keys=["driver_id"])],  # not at module level: not declared
    ttl=timedelta(days=1),
    schema=[Field(name="driver_id", dtype=Int64), Field(name="conv_rate", dtype=Float32)],
    source=driver_stats_source,
)
""",
        "feature view 'ghost_view' references entity 'ghost_entity', which neither this change nor the registry has",
    ),
    "an on-demand view reads a view in neither the upload nor the registry": (
        """
import pandas as pd
from feast import FeatureView, Field
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Float64
from feature_definitions import driver, driver_stats_fv

_views = [
    FeatureView(
        name="hidden_view",
        entities=[driver],
        ttl=driver_stats_fv.ttl,
        schema=driver_stats_fv.schema,
        source=driver_stats_fv.batch_source,
    )
]  # in a list: not declared


@on_demand_feature_view(sources=_views, schema=[Field(name="conv_rate_x3", dtype=Float64)])
def ghost_odfv(inputs: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame()
    out["conv_rate_x3"] = inputs["conv_rate"] * 3
    return out
""",
        "feature view 'ghost_odfv' references feature view 'hidden_view', which neither this change nor the registry has",
    ),
}


@pytest.mark.parametrize("case", sorted(DANGLING))
def test_other_dangling_references_are_refused_at_plan_time(corpus: Corpus, case: str) -> None:
    registry_sync(trigger="test")
    code, message = DANGLING[case]
    archive = repo_archive(Path(corpus[LOCAL].path), extra={"ghost.py": code})
    with pytest.raises(InvalidInput) as excinfo:
        upload(LOCAL, archive, mode="partial")
    assert message in str(excinfo.value), str(excinfo.value)
    assert not ChangeRequest.objects.exists()


def test_replanning_an_upload_never_reverts_a_change_applied_since(corpus: Corpus, celery_worker: Any) -> None:
    """Two uploads from the same base, each editing its own object. The first is applied; re-planning the second
    (stale now) keeps the first's change, as the registry has it, and says which request made it."""
    registry_sync(trigger="test")
    path = Path(corpus[LOCAL].path)
    entity_edit = (
        'Entity(name="driver", join_keys=["driver_id"])',
        'Entity(name="driver", join_keys=["driver_id"], description="A driver")',
    )
    field_edit = ('description="Average daily trips"', 'description="Average trips per day"')
    first = upload(LOCAL, repo_archive(path, {DEFINITIONS: entity_edit}), mode="partial")
    second = upload(LOCAL, repo_archive(path, {DEFINITIONS: field_edit}), mode="partial")
    assert set(planned(first)) == {("entity", "driver")}
    approver = make_user("ana", "approver", teams=("driver_performance",))
    change_request_approve(cr=first, actor=approver)
    change_request_apply_start(cr=first, actor=make_user("oto", "operator"))
    first = wait_for(first, "applied", "failed", timeout=180)
    assert first.status == "applied", first.apply_result
    wait_for_catalog(first)

    # Applying the second as planned would revert the first: it goes stale, naming the request that moved it.
    approver2 = make_user("abe", "approver", teams=("driver_performance",))
    change_request_approve(cr=second, actor=approver2)
    change_request_apply_start(cr=second, actor=User.objects.get(username="oto"))
    second = wait_for(second, "stale", "applied", "failed", timeout=180)
    assert second.status == "stale"
    assert f"entity 'driver' changed (description) by CR-{first.pk}" in second.stale_reason, second.stale_reason

    replanned = change_request_revise(cr=second, actor=author())
    assert ("entity", "driver") not in planned(replanned)  # not reverted to the upload's older copy
    assert ("feature_view", "driver_hourly_stats") in planned(replanned)
    assert any(
        w.startswith(f"entity 'driver' changed in the registry after this request was planned (by CR-{first.pk})")
        for w in replanned.plan["warnings"]
    ), replanned.plan["warnings"]
    entity = feast_gateway.project_protos(corpus[LOCAL], LOCAL, [("entity", "driver")])[("entity", "driver")]
    assert entity.message().spec.description == "A driver"


def test_apply_writes_exactly_the_planned_protos(corpus: Corpus, celery_worker: Any) -> None:
    """Plan an upload with a description edit and a source owner edit, approve, apply through a real
    worker: `feast registry-dump` then holds every planned object exactly as planned."""
    registry_sync(trigger="test")
    edit = {
        DEFINITIONS: (
            'description="Driver metadata as key-value pairs"',
            'description="Driver metadata, as key-value pairs"',
        )
    }
    cr = upload(LOCAL, repo_archive(Path(corpus[LOCAL].path), edit, extra={"doubled.py": SCHEMALESS_ON_DEMAND}))
    # The on-demand view declares no schema: the sandbox ran Feast's inference, so the plan has its field.
    added = planned(cr)[("feature_view", "conv_rate_doubled")]
    assert added["action"] == "added"
    (features,) = [c for c in added["changes"] if c["path"] == "features"]
    assert [f["name"] for f in features["after"]] == ["conv_rate_x2"]
    change_request_approve(cr=cr, actor=make_user("ana", "approver", teams=("driver_performance",)))
    cr.refresh_from_db()
    assert cr.status == "approved", (cr.status, cr.required_approvals, cr.required_teams, cr.severity)
    change_request_apply_start(cr=cr, actor=make_user("oto", "operator"))
    cr = wait_for(cr, "applied", "failed", timeout=180)
    assert cr.status == "applied", cr.apply_result
    wait_for_catalog(cr)
    dump = feast_gateway.registry_dump_json(corpus[LOCAL])
    stored = feast_gateway.project_protos(corpus[LOCAL], LOCAL)
    for upsert in cr.proposal["upserts"]:
        key = (upsert["kind"], upsert["name"])
        assert feast_gateway.content_hash(stored[key]) == upsert["content_hash"], key
    dumped = {
        (kind, item.get("spec", item).get("name")): item
        for kind, field in (("feature_view", "featureViews"), ("feature_service", "featureServices"))
        for item in dump.get(field, [])
    }
    doubled = next(v for v in dump["onDemandFeatureViews"] if v["spec"]["name"] == "conv_rate_doubled")
    assert [f["name"] for f in doubled["spec"]["features"]] == ["conv_rate_x2"]
    view = dumped[("feature_view", "driver_hourly_stats")]["spec"]
    assert [f.get("description") for f in view["features"] if f["name"] == "driver_metadata"] == [
        "Driver metadata, as key-value pairs"
    ]
    # The sync credits the request: every new version is in-band, none out-of-band.
    assert not ObjectVersion.objects.filter(out_of_band=True).exists()
    assert set(ObjectVersion.objects.filter(change_request=cr).values_list("object__kind", "object__name")) == {
        (u["kind"], u["name"]) for u in cr.proposal["upserts"]
    }


def test_paths_from_file_point_into_the_governed_repo_and_feastignore_is_honoured(corpus: Corpus) -> None:
    """As under `feast apply` in the governed repo: a path built from `__file__` is that repo's path (not
    the sandbox's), and files listed in `.feastignore` are not imported."""
    registry_sync(trigger="test")
    repo = Path(corpus[LOCAL].path)
    edit = {
        DEFINITIONS: (
            'path="data/driver_stats.parquet"',
            'path=str(__import__("pathlib").Path(__file__).parent / "data" / "driver_stats.parquet")',
        )
    }
    cr = upload(LOCAL, repo_archive(repo, edit, extra={".feastignore": "test_workflow.py\n"}))
    source = planned(cr)[("data_source", "driver_hourly_stats_source")]
    assert [(c["path"], c["before"], c["after"]) for c in source["changes"]] == [
        ("file_options.uri", "data/driver_stats.parquet", f"{repo}/data/driver_stats.parquet")
    ]
    assert cr.proposal["files"] == [DEFINITIONS]  # test_workflow.py is ignored, as Feast ignores it
