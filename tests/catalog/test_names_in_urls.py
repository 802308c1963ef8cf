"""Every Feast name round-trips through every URL: an unnamed FileSource (Feast names it after its path),
and names with spaces, dots, unicode and `%`, in the browser and over the API (catalog.urlnames)."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import pytest
from django.test import Client
from django.urls import resolve, reverse

from catalog import feast_gateway
from catalog.models import CatalogObject
from catalog.urlnames import name_segment
from tests.browser_fixtures import login, shot
from tests.catalog.test_sync import _edit, sync_one
from tests.conftest import run_feast

PROJECT = "employee_attrition"
NAMES = ["data/department_stats.parquet", "dept stats", "dépt.stats→v2", "50% sample", "a/b%2Fc d", "..", "%00x"]


@pytest.mark.parametrize("name", NAMES)
def test_every_name_is_one_segment_and_comes_back_exactly(name: str) -> None:
    for route, args in [
        ("catalog:object_detail", [PROJECT, "data-sources", name]),
        ("catalog_api:data_source_detail", [PROJECT, name]),
        ("jobs:view_ledger", [PROJECT, name]),
    ]:
        url = reverse(route, args=args)
        served = unquote(url)  # what the server's path is after it decodes the request line once
        assert served.count("/") == url.count("/"), url  # the name did not add a segment
        assert resolve(served).kwargs["name" if "ledger" not in route else "view"] == name
    assert name_segment(name) == reverse("catalog:owner_detail", args=[name]).split("/")[2]  # by hand = reverse()


def test_a_name_with_a_nul_character_is_a_404_not_a_500(client: Client, viewer: Any, db: None) -> None:
    client.force_login(viewer)
    nul = name_segment("a\x00b")
    assert client.get(f"/projects/{PROJECT}/data-sources/{nul}/").status_code == 404
    assert client.get(f"/api/v1/projects/{PROJECT}/data-sources/{nul}/").status_code == 404


@pytest.fixture
def unnamed_source_repo(editable_demo_repo: feast_gateway.RepoRef, transactional_db: None) -> str:
    """The demo repo with department_stats as teams write it: a FileSource with no name (Feast names it
    `data/department_stats.parquet`), and a service with spaces, unicode and `%` in its name; applied with
    Feast's CLI and synced."""
    features = editable_demo_repo.path / "features.py"
    _edit(
        features,
        '    name="department_stats",\n    path="data/department_stats.parquet",',
        '    path="data/department_stats.parquet",',
    )
    _edit(features, 'name="attrition_model_v2",', 'name="attrition model v2 (50% sample, é)",')
    run_feast(editable_demo_repo, "apply")
    assert sync_one().status == "succeeded"
    return "data/department_stats.parquet"


def test_a_source_named_after_its_path_has_working_pages_and_api(
    client: Client, viewer: Any, unnamed_source_repo: str
) -> None:
    source = CatalogObject.objects.get(project__name=PROJECT, kind="data_source", name=unnamed_source_repo)
    service = CatalogObject.objects.get(
        project__name=PROJECT, kind="feature_service", name__startswith="attrition model"
    )
    client.force_login(viewer)
    for obj in (source, service):
        page = client.get(obj.get_absolute_url())
        assert page.status_code == 200, obj.get_absolute_url()
        assert obj.name in page.content.decode()
        api = client.get(obj.get_api_url())
        assert api.status_code == 200 and api.json()["name"] == obj.name, obj.get_api_url()
    pages = [
        f"/projects/{PROJECT}/",
        f"/projects/{PROJECT}/lineage/",
        f"/projects/{PROJECT}/feature-views/department_features/",
        "/search/?q=parquet",
        f"/jobs/ledger/{PROJECT}/department_features/",
    ]
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, path
    # Links to the source on the pages that show it lead back to it.
    view_page = client.get(f"/projects/{PROJECT}/feature-views/department_features/").content.decode()
    assert source.get_absolute_url() in view_page
    lists = [
        "/api/v1/objects/",
        "/api/v1/data-sources/",
        f"/api/v1/projects/{PROJECT}/objects/",
        f"/api/v1/projects/{PROJECT}/data-sources/",
        f"/api/v1/projects/{PROJECT}/lineage/",
    ]
    for path in lists:
        response = client.get(path, {"page_size": 100})
        assert response.status_code == 200, (path, response.content[:300])
    for path in ("/api/v1/search/", "/search/"):
        response = client.get(path, {"q": "parquet"})
        assert response.status_code == 200, (path, response.content[:300])
    listed = client.get("/api/v1/data-sources/", {"page_size": 100}).json()["results"]
    (row,) = [r for r in listed if r["name"] == unnamed_source_repo]
    assert row["url"] == source.get_api_url() and row["html_url"] == source.get_absolute_url()
    assert client.get(row["url"]).json()["name"] == unnamed_source_repo  # the listed link resolves to it
    hits = client.get("/api/v1/search/", {"q": "department_stats"}).json()["results"]
    assert any(h["name"] == unnamed_source_repo for h in hits), hits


@pytest.mark.browser
def test_in_the_browser_a_search_for_parquet_leads_to_the_unnamed_source(
    page: Any, viewer: Any, unnamed_source_repo: str, live_server: Any
) -> None:
    """Search, click the hit, land on the source's page; then follow the view that reads it and back."""
    login(page, live_server.url, viewer.username)
    page.goto(f"{live_server.url}/search/?q=parquet")
    hit = page.locator("a", has_text=unnamed_source_repo).first
    hit.wait_for()
    hit.click()
    page.wait_for_url(f"**/data-sources/{name_segment(unnamed_source_repo)}/")
    assert unnamed_source_repo in page.locator("h1").inner_text()
    shot(page, "names-01-unnamed-source")
    page.goto(f"{live_server.url}/projects/{PROJECT}/feature-views/department_features/")
    page.locator("a", has_text=unnamed_source_repo).first.click()
    page.wait_for_url(f"**/data-sources/{name_segment(unnamed_source_repo)}/")
    assert unnamed_source_repo in page.locator("h1").inner_text()


@pytest.mark.django_db
def test_owners_teams_and_models_with_slashes_link_and_open(
    client: Any, admin_user: Any, demo_repo: feast_gateway.RepoRef
) -> None:
    """Owners, teams and model names are free text too: `/` in them never breaks a page that links them."""
    from catalog.models import ModelConsumer, Team

    assert sync_one().status == "succeeded"

    team = Team.objects.create(name="people/analytics")
    entity = CatalogObject.objects.get(project__name="employee_attrition", kind="entity", name="employee_id")
    CatalogObject.objects.filter(pk=entity.pk).update(owner="ml-platform/churn", team=team)
    service = CatalogObject.objects.get(project__name="employee_attrition", name="attrition_model_v1")
    model = ModelConsumer.objects.create(
        service=service, name="churn/v2", version="1", owner="ml-platform/churn", team=team
    )
    client.force_login(admin_user)
    for url in [
        entity.get_absolute_url(),
        service.get_absolute_url(),
        f"/models/{model.pk}/",
        "/search/?q=churn",
        "/search/suggest/?q=ml-platform",
        "/search/suggest/?q=people",
        reverse("catalog:owner_detail", args=["ml-platform/churn"]),
        reverse("catalog:owner_detail", args=["people/analytics"]),
        "/api/v1/models/",
        f"/api/v1/models/{model.pk}/",
        "/api/v1/teams/",
        f"/api/v1/teams/{name_segment('people/analytics')}/",
    ]:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
    owner_page = client.get(reverse("catalog:owner_detail", args=["ml-platform/churn"])).content.decode()
    assert "employee_id" in owner_page
    # and every page links them with that encoding, so the links open
    page = client.get(f"/models/{model.pk}/").content.decode()
    assert f'href="/owners/{name_segment("ml-platform/churn")}/"' in page
