"""Browsing without searching: every feature (sortable, filterable), every model, every team."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from catalog import feast_gateway
from catalog.models import Approval, CatalogObject, ChangeRequest, Feature, ModelConsumer, Project, ServiceFeature, Team
from tests.catalog.test_sync import sync_one

pytestmark = pytest.mark.django_db
PROJECT = "employee_attrition"


@pytest.fixture
def synced(demo_repo: feast_gateway.RepoRef) -> None:
    assert sync_one().status == "succeeded"


def shown(client: Client, query: str = "") -> list[str]:
    page = client.get(f"/features/?{query}")
    assert page.status_code == 200
    return re.findall(r'data-feature="([^"]+)"', page.content.decode())


def test_the_feature_table_lists_every_live_feature_and_sorts_and_filters(
    client: Client, viewer: Any, synced: None
) -> None:
    client.force_login(viewer)
    live = Feature.objects.filter(view__kind="feature_view").exclude(status="removed").exclude(view__status="removed")
    expected = {f"{f.view.project.name}/{f.view.name}:{f.name}" for f in live.select_related("view__project")}
    assert len(expected) > 10 and set(shown(client)) == expected
    # Used by: how many services read it, from the services' vectors.
    readers: dict[str, int] = {}
    for row in ServiceFeature.objects.select_related("view__project"):
        key = f"{row.view.project.name}/{row.view.name}:{row.feature_name}"
        readers[key] = readers.get(key, 0) + 1
    by_use = shown(client, "sort=-used_by")
    assert [readers.get(k, 0) for k in by_use] == sorted((readers.get(k, 0) for k in by_use), reverse=True)
    assert readers.get(by_use[0], 0) >= 2  # tenure & co. are read by both attrition services
    names = [k.split(":")[1] for k in shown(client, "sort=name")]
    assert names == sorted(names)
    floats = shown(client, "dtype=float32")
    assert floats and all(
        live.get(view__name=k.split("/")[1].split(":")[0], name=k.split(":")[1]).dtype == "Float32" for k in floats
    )
    assert set(shown(client, "q=satisfaction")) == {k for k in expected if "satisfaction" in k}
    assert set(shown(client, "view=department_features")) == {k for k in expected if "/department_features:" in k}
    page = client.get("/features/?sort=colour").content.decode()
    assert "bad filter value for sort" in page and "data-feature" not in page  # said, not a 500 or a wrong table
    assert "No feature matches" in client.get("/features/?q=no-such-thing").content.decode()


def test_the_models_index_says_which_pinned_contracts_no_longer_hold(
    client: Client, viewer: Any, proposer: Any, synced: None
) -> None:
    from catalog.contracts import contract_for_service
    from catalog.services.consumers import model_consumer_register

    service = CatalogObject.objects.get(project__name=PROJECT, kind="feature_service", name="attrition_model_v1")
    current = contract_for_service(service).hash
    model_consumer_register(
        actor=proposer, service=service, name="churn", version="1", owner="x", contract_hash=current
    )
    model_consumer_register(
        actor=proposer, service=service, name="churn", version="0", owner="x", contract_hash="0" * 64
    )
    model_consumer_register(actor=proposer, service=service, name="loose", version="1", owner="x")
    client.force_login(viewer)
    page = client.get("/models/").content.decode()
    rows = dict(re.findall(r'data-model="([^"]+)">.*?(?:data-contract="(\w+)"|not pinned)', page, re.DOTALL))
    assert rows == {"churn@0": "mismatch", "churn@1": "match", "loose@1": ""}
    assert ModelConsumer.objects.count() == 3


def test_the_team_directory_shows_members_holdings_and_waiting_sign_offs(
    client: Client, viewer: Any, proposer: Any, synced: None
) -> None:
    team, _ = Team.objects.get_or_create(name="people-analytics")
    member = User.objects.create_user("pat")
    team.members.add(member)
    cr = ChangeRequest.objects.create(
        project=Project.objects.get(name=PROJECT),
        title="retype tenure",
        author=proposer,
        status="submitted",
        source="edit",
        required_teams=[{"id": team.pk, "name": team.name, "objects": []}],
    )
    client.force_login(viewer)

    def row() -> str:
        page = client.get("/teams/").content.decode()
        match = re.search(r'data-team="people-analytics">(.*?)</tr>', page, re.DOTALL)
        assert match, page[:500]
        return match.group(1)

    waiting = row()
    assert "pat" in waiting and f"CR-{cr.pk}" in waiting and 'data-waiting="1"' in waiting
    owned = CatalogObject.objects.filter(team=team).exclude(status="removed").count()
    assert owned > 0 and f'<td class="num">{owned}</td>' in waiting
    Approval.objects.create(change_request=cr, revision=1, user=member, decision="approve", teams=[team.name])
    assert f"CR-{cr.pk}" not in row() and 'data-waiting="0"' in row()  # signed off by a member


def test_the_header_links_to_the_browse_pages_the_api_docs_and_the_admin_for_admins(
    client: Client, viewer: Any, admin_user: Any, synced: None
) -> None:
    client.force_login(viewer)
    home = client.get("/").content.decode()
    for url in ("/features/", "/models/", "/teams/", "/api/v1/docs/"):
        assert f'href="{url}"' in home, url
    assert 'href="/admin/"' not in home
    client.force_login(admin_user)
    assert 'href="/admin/"' in client.get("/").content.decode()
    docs = client.get("/api/v1/docs/").content.decode()
    assert 'href="/"' in docs and "Feature Portal" in docs  # the way back from the API docs
