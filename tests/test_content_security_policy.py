"""The Content-Security-Policy: every page type answers with it, and no page or template holds inline code.

The policy (portal/settings.py) allows scripts and styles from the portal's own static files only, so an
inline `<script>`, an event-handler attribute (`onclick=`), a `<style>` element or a `style=` attribute would
be blocked by the browser: they are refused here, on the rendered pages and in every template's source.
tests/browser/test_content_security_policy_browser.py checks the same pages in Chromium.
"""

from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from catalog import feast_gateway
from catalog.models import CatalogObject, ChangeRequest
from catalog.services.sync import registry_sync
from jobs.models import JobRun
from tests import environment as env
from tests.conftest import wait_for_terminal

PROJECT = "employee_attrition"
VIEW = "employee_features"
TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


class InlineCode(HTMLParser):
    """Collects what a strict policy blocks: inline scripts, event handlers, javascript: URLs and inline styles."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.script_bodies: list[str] = []
        self._in_inline_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}=...>: an event-handler attribute")
            if name == "style":
                self.problems.append(f"<{tag} style={value!r}>: a style attribute")
            if name in ("href", "src", "action", "formaction") and (value or "").strip().lower().startswith(
                "javascript:"
            ):
                self.problems.append(f"<{tag} {name}={value!r}>: a javascript: URL")
        if tag == "style":
            self.problems.append("<style>: an inline stylesheet")
        if tag == "script" and not named.get("src") and named.get("type") != "application/json":
            self._in_inline_script = True
            self.problems.append("<script> without src: an inline script")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_inline_script = False

    def handle_data(self, data: str) -> None:
        if self._in_inline_script and data.strip():
            self.script_bodies.append(data.strip()[:120])


def inline_code(html: str) -> list[str]:
    """What in `html` a policy without 'unsafe-inline' would block."""
    parser = InlineCode()
    parser.feed(html)
    parser.close()
    return parser.problems + [f"inline script body: {body}" for body in parser.script_bodies]


def test_the_policy_allows_no_inline_code_no_eval_and_no_other_origin() -> None:
    policy = dict(d.strip().split(" ", 1) for d in settings.CONTENT_SECURITY_POLICY.split(";"))
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert policy["default-src"] == "'self'" and policy["object-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'" and policy["base-uri"] == "'none'"
    assert "unsafe" not in settings.CONTENT_SECURITY_POLICY and "http" not in settings.CONTENT_SECURITY_POLICY


def test_the_checker_finds_each_kind_of_inline_code() -> None:
    page = (
        '<script>alert(1)</script><script type="application/json" id="d">{"a": 1}</script>'
        '<script src="/static/x.js"></script><button onclick="go()">x</button><div style="color:red"></div>'
        '<style>p{}</style><a href="javascript:void(0)">x</a>'
    )
    found = inline_code(page)
    assert len(found) == 6, found
    assert "inline script body: alert(1)" in found


def test_no_template_holds_inline_scripts_styles_or_event_handlers() -> None:
    problems = {}
    for template in sorted(TEMPLATES.rglob("*.html")):
        # Template tags and comments are not HTML (a tag stands for the value it prints, e.g. a static URL);
        # what they print is checked on the rendered pages below.
        source = re.sub(r"{#.*?#}", "", template.read_text(), flags=re.DOTALL)
        source = re.sub(r"{%.*?%}", "t", source, flags=re.DOTALL)
        found = inline_code(source)
        if found:
            problems[str(template.relative_to(TEMPLATES))] = found
    assert problems == {}
    assert len(list(TEMPLATES.rglob("*.html"))) > 40  # the glob found the templates


def _start_job(client: Client, **body: Any) -> JobRun:
    response = client.post("/api/v1/jobs/", body, content_type="application/json")
    assert response.status_code == 202, response.content
    return JobRun.objects.get(pk=response.json()["id"])


@pytest.fixture
def pages_with_content(
    demo_repo: feast_gateway.RepoRef, transactional_db: None, operator: Any, celery_worker: Any
) -> tuple[Client, dict[str, str]]:
    """A synced demo catalog with a change request and one finished job of each kind a page draws."""
    assert registry_sync(project=PROJECT, trigger="test", force=True)[0].status == "succeeded"
    client = Client()
    client.force_login(operator)
    runs = {
        "materialize": _start_job(
            client,
            kind="materialize",
            project=PROJECT,
            views=[VIEW],
            mode="range",
            start=(env.DATA_END - timedelta(days=30)).isoformat(),
            end=env.DATA_END.isoformat(),
        ),
        "stats": _start_job(client, kind="stats", project=PROJECT, view=VIEW),
        "skew": _start_job(client, kind="skew", project=PROJECT, view=VIEW, sample=20),
        "preview": _start_job(
            client,
            kind="preview",
            project=PROJECT,
            feature_service="attrition_model_v1",
            entities={"employee_id": [100]},
        ),
    }
    for kind, run in runs.items():
        assert wait_for_terminal(run).status == JobRun.Status.SUCCEEDED, (kind, run.error)
    proposed = client.post(
        "/api/v1/change-requests/",
        {
            "project": PROJECT,
            "title": "describe tenure's view",
            "edits": [{"op": "set_metadata", "kind": "feature_view", "name": VIEW, "description": "csp"}],
        },
        content_type="application/json",
    )
    assert proposed.status_code == 201, proposed.content
    change_request = ChangeRequest.objects.get(pk=proposed.json()["id"])
    one_of_each_kind = {
        f"object page: {obj.kind}": obj.get_absolute_url()
        for obj in CatalogObject.objects.filter(project__name=PROJECT).order_by("kind", "name")
    }
    assert {"object page: entity", "object page: feature_view", "object page: feature_service"} <= set(one_of_each_kind)
    urls = {
        "home": "/",
        "search": "/search/?q=tenure",
        "project": f"/projects/{PROJECT}/",
        **one_of_each_kind,
        "feature page with statistics": f"/projects/{PROJECT}/feature-views/{VIEW}/features/tenure/",
        "lineage": f"/projects/{PROJECT}/lineage/",
        "change request list": "/change-requests/",
        "change request": change_request.get_absolute_url(),
        "new change request": "/change-requests/new/",
        "catalog as of": "/catalog/as-of/",
        "owner": "/owners/people-analytics/",
        "audit": "/audit/",
        "job list": "/jobs/",
        **{f"job page: {kind}": f"/jobs/{run.pk}/" for kind, run in runs.items()},
        "job status partial (htmx)": f"/jobs/{runs['skew'].pk}/status/",
        "preview": "/jobs/preview/",
        "freshness": "/jobs/freshness/",
        "ledger with charts": f"/jobs/ledger/{PROJECT}/{VIEW}/",
        "datasets": "/jobs/datasets/",
        "profile": "/profile/",
        "API docs": "/api/v1/docs/",
    }
    return client, urls


def test_every_page_type_sends_the_policy_and_holds_no_inline_code(
    pages_with_content: tuple[Client, dict[str, str]],
) -> None:
    client, urls = pages_with_content
    seen: dict[str, list[str]] = {}
    for label, url in urls.items():
        response = client.get(url)
        assert response.status_code == 200, (label, url, response.status_code)
        assert response.headers["Content-Security-Policy"] == settings.CONTENT_SECURITY_POLICY, label
        html = response.content.decode()
        seen[label] = inline_code(html)
        if label == "ledger with charts":
            assert html.count('data-chart="histogram"') == 6 and 'data-chart="ledger"' in html
            assert 'id="ledger-data" type="application/json"' in html
        if label == "job page: skew":
            assert 'data-chart="skew"' in html
    assert {label: found for label, found in seen.items() if found} == {}
    # Pages outside the signed-in set: the sign-in page, a 404, the JSON API and a static file.
    anonymous = Client()
    for url, status in (("/accounts/login/", 200), ("/no-such-page/", 404), ("/api/v1/me/", 401)):
        response = anonymous.get(url)
        assert response.status_code == status, url
        assert response.headers["Content-Security-Policy"] == settings.CONTENT_SECURITY_POLICY, url
        assert inline_code(response.content.decode()) == [], url
    not_found = client.get("/projects/nope/")
    assert not_found.status_code == 404 and inline_code(not_found.content.decode()) == []
