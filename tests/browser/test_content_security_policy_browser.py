"""The pages with plotly charts and htmx work in Chromium under the Content-Security-Policy, with no violation.

Every `securitypolicyviolation` event (and any console message about the policy) is recorded and fails the
test; a first step proves the recorder sees one. The charts are drawn by static/charts.js from json_script
data, also after htmx swaps a finished job's status in. Screenshots: test-artifacts/csp-*.png.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings

from catalog import feast_gateway
from catalog.services.sync import registry_sync
from tests.browser_fixtures import login, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PROJECT = "employee_attrition"
VIEW = "employee_features"
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.reportCspViolation([e.violatedDirective, e.blockedURI, `${e.sourceFile}:${e.lineNumber}`, e.sample].join(" "));
});
"""


def _watch_violations(page: Any) -> list[str]:
    violations: list[str] = []
    page.expose_function("reportCspViolation", lambda text: violations.append(text))
    page.add_init_script(REPORT_VIOLATIONS)
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
    return violations


def _run_from_ledger(page: Any, base: str, button: str) -> None:
    """Press a ledger button, then let htmx poll the job page until the run has finished."""
    page.goto(f"{base}/jobs/ledger/{PROJECT}/{VIEW}/")
    page.click(button)
    page.wait_for_url(f"{base}/jobs/*/")
    page.wait_for_selector('#job-status[data-job-status="succeeded"]', timeout=120_000)


def test_charts_and_htmx_work_under_the_policy_with_no_violation(
    page: Any, live_server: Any, operator: Any, demo_repo: feast_gateway.RepoRef, celery_worker: Any
) -> None:
    assert registry_sync(project=PROJECT, trigger="test", force=True)[0].status == "succeeded"
    base = live_server.url
    violations = _watch_violations(page)
    login(page, base, operator.username)

    # The recorder works: an inline script added to the page is blocked and reported.
    response = page.goto(f"{base}/")
    assert response.headers["content-security-policy"] == settings.CONTENT_SECURITY_POLICY
    page.evaluate("""() => { const s = document.createElement("script");
                             s.textContent = "window.inlineRan = true"; document.body.appendChild(s); }""")
    page.wait_for_function("() => true")
    assert page.evaluate("() => window.inlineRan === undefined")
    assert any("script-src" in v for v in violations), violations
    violations.clear()
    page.problems[:] = [p for p in page.problems if "Content Security Policy" not in p]

    # htmx: the header's type-ahead.
    page.fill("#header-search", "tenur")
    page.locator("#suggestions a", has_text="tenure").first.wait_for()

    # Jobs started from the ledger; htmx swaps each finished status in, and its chart is drawn then.
    _run_from_ledger(page, base, "#ledger-materialize")
    _run_from_ledger(page, base, "#ledger-stats")
    page.locator("#job-status .feature-stats .main-svg").first.wait_for()
    assert page.locator("#job-status .js-plotly-plot").count() == 6
    shot(page, "csp-stats-job")
    _run_from_ledger(page, base, "#ledger-skew")
    page.locator("#skew-chart .main-svg").first.wait_for()
    shot(page, "csp-skew-job")

    # The ledger: rows per run and the six histograms; plotly's mode bar and a bar's hover label are drawn.
    page.goto(f"{base}/jobs/ledger/{PROJECT}/{VIEW}/")
    page.locator("#ledger-chart .main-svg").first.wait_for()
    assert page.locator(".js-plotly-plot").count() == 7
    page.locator("#ledger-chart .nsewdrag").first.hover()  # the mode bar shows
    page.evaluate("""() => Plotly.Fx.hover("ledger-chart", [{curveNumber: 0, pointNumber: 0}])""")  # a bar's label
    page.locator("#ledger-chart .hoverlayer .hovertext").first.wait_for()
    shot(page, "csp-ledger")

    for path, chart, name in [
        ("/jobs/freshness/", "#freshness-chart", "csp-freshness"),
        (f"/projects/{PROJECT}/lineage/", "#lineage-graph", "csp-lineage"),
        (f"/projects/{PROJECT}/feature-views/{VIEW}/features/tenure/", "#feature-statistics", "csp-feature"),
    ]:
        page.goto(f"{base}{path}")
        page.locator(f"{chart} .main-svg").first.wait_for()
        shot(page, name)

    # The API docs: Swagger UI starts from static/api_docs.js and expands an operation.
    page.goto(f"{base}/api/v1/docs/")
    page.locator(".opblock-summary").first.click()
    page.locator(".opblock-body .try-out__btn").first.wait_for()
    shot(page, "csp-api-docs")

    assert violations == []
