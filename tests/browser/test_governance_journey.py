"""The governance journey in Chromium: a proposer retypes a field from the view's page, the plan shows it is
breaking, the proposer cannot approve, two approvers approve, the operator applies (real worker), and the
feature view page shows the new version linked to the request."""

from __future__ import annotations

from typing import Any

import pytest

from catalog import feast_gateway
from catalog.models import ChangeRequest
from tests.browser_fixtures import login, shot
from tests.catalog.test_sync import sync_one
from tests.governance.conftest import make_user, register_model, wait_for, wait_for_catalog

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def logout(page: Any, base: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{base}/accounts/login/")


def test_retype_a_field_review_it_and_apply_it(
    page: Any, demo_repo: feast_gateway.RepoRef, live_server: Any, celery_worker: Any
) -> None:
    assert sync_one().status == "succeeded"
    base = str(live_server.url)
    make_user("pia", "proposer", teams=("people-analytics",))
    make_user("amy", "approver", teams=("people-analytics",))
    make_user("abe", "approver")
    make_user("oto", "operator")
    register_model()
    view_url = f"{base}/projects/employee_attrition/feature-views/employee_features/"

    # The proposer retypes tenure (Float32 -> Int64) with the form on the view's page.
    login(page, base, "pia")
    page.goto(view_url)
    page.click("summary:text('Change a field')")
    page.select_option("#dtype-field", "tenure")
    page.select_option("#dtype-new", "Int64")
    shot(page, "governance-01-propose")
    page.locator("form:has(#dtype-field) button[type=submit]").click()
    page.wait_for_url("**/change-requests/*/")
    cr = ChangeRequest.objects.get()
    # The plan: breaking, with the rule, the field-level change and the service's vector before/after.
    assert page.locator("#cr-severity").inner_text() == "breaking"
    assert page.locator("#cr-status").inner_text() == "Submitted"
    view_plan = page.locator("#plan-feature_view-employee_features")
    assert "tenure: Float32 → Int64" in view_plan.inner_text()
    vector = page.locator("#vector-attrition_model_v1")
    assert "Float32" in vector.locator("table").nth(0).inner_text()
    assert "employee_features:tenure" in vector.locator("table").nth(1).inner_text()
    assert "Int64" in vector.locator("table").nth(1).locator("tr").nth(1).inner_text()
    assert "attrition-clf@3" in page.locator("#impact").inner_text()
    # The author cannot approve: no button, and the page says why.
    assert page.locator("#approve-button").count() == 0
    assert "someone else must approve" in page.locator("#own-request").inner_text()
    shot(page, "governance-02-plan")

    # Two approvers (one from the owning team) approve.
    for reviewer in ("abe", "amy"):
        logout(page, base)
        login(page, base, reviewer)
        page.goto(f"{base}/change-requests/{cr.pk}/")
        page.click("#approve-button")
        page.wait_for_url(f"**/change-requests/{cr.pk}/")
    assert page.locator("#cr-status").inner_text() == "Approved"
    shot(page, "governance-03-approved")

    # The operator applies; the worker applies the stored protos; the page refreshes until applied.
    logout(page, base)
    login(page, base, "oto")
    page.goto(f"{base}/change-requests/{cr.pk}/")
    page.click("#apply-button")
    wait_for(cr, "applied", "failed", "stale")
    assert cr.status == "applied", cr.apply_result
    page.goto(f"{base}/change-requests/{cr.pk}/")
    assert page.locator("#cr-status").inner_text() == "Applied"
    assert "feature_view:employee_features" in page.locator("#apply-result").inner_text()
    written = page.locator("#applied-fields tr:has-text('feature_view:employee_features')").inner_text()
    assert "features[tenure]" in written, written  # what was applied, field by field
    shot(page, "governance-04-applied")

    # The feature view page shows the new version, its dtype, and the request that made it.
    wait_for_catalog(cr)
    page.goto(view_url)
    assert "v2" in page.locator(".pagehead").first.inner_text()
    schema = page.locator("table:has(th:text-is('Position')) tbody tr").first.inner_text()
    assert "tenure" in schema and "Int64" in schema
    history = page.locator("#history").inner_text()
    assert f"CR-{cr.pk}" in history and "out-of-band" not in history
    shot(page, "governance-05-view-v2")


def test_uploading_the_repo_as_it_is_shows_progress_then_plans_nothing(
    page: Any, demo_repo: feast_gateway.RepoRef, live_server: Any, tmp_path: Any, celery_worker: Any
) -> None:
    """A newcomer zips the feature repo folder as it is (data files and all) and uploads it unchanged: the
    upload goes to a worker's plan job, whose page follows it live and then says that nothing would change,
    with a link back to the form that keeps what was typed."""
    import shutil

    assert sync_one().status == "succeeded"
    base = str(live_server.url)
    make_user("pia", "proposer", teams=("people-analytics",))
    archive = shutil.make_archive(str(tmp_path / "feature_repo"), "zip", demo_repo.path.parent, demo_repo.path.name)
    login(page, base, "pia")
    page.goto(f"{base}/change-requests/new/")
    page.fill("input[name=title]", "the repo as it is")
    page.check("input[name=mode][value=full]")
    page.set_input_files("input[name=archive]", archive)
    progress = page.locator("#plan-progress")
    assert progress.is_hidden()
    # Submitting runs the page's submit handler synchronously: the state it leaves is read before the
    # browser navigates away to the server's answer (the plan job's page).
    hidden, text, disabled = page.evaluate(
        """() => {
            const form = document.querySelector("form:has(input[name=archive])");
            form.requestSubmit();
            const note = document.getElementById("plan-progress");
            return [note.hidden, note.textContent, form.querySelector("button[type=submit]").disabled];
        }"""
    )
    assert (hidden, disabled) == (False, True)
    assert text.startswith("Uploading the archive; a worker then parses it in the sandbox"), text
    error = page.locator("#job-error")  # the job page polls its status with htmx until the job has finished
    error.wait_for(timeout=120_000)
    assert error.inner_text() == "the upload matches the registry: nothing would change"
    assert not ChangeRequest.objects.exists()
    page.click("#plan-retry")
    assert page.input_value("input[name=title]") == "the repo as it is"
    assert page.is_checked("input[name=mode][value=full]")
    shot(page, "governance-upload-02-nothing-to-plan")
