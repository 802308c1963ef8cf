"""The propose-a-change forms on a view page: what cannot be removed is not offered, and a refusal keeps
what the person typed."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.test import Client

from catalog.models import ChangeRequest
from tests.governance.conftest import PROJECT

pytestmark = pytest.mark.django_db
VIEW_URL = f"/projects/{PROJECT}/feature-views/employee_features/"
ODFV_URL = f"/projects/{PROJECT}/feature-views/employee_risk_signals/"


def _schema_row(page: str, field: str) -> str:
    return page.split(f'/features/{field}/">{field}</a>')[1].split("</tr>")[0]


def _remove_form(page: str) -> str:
    return page.split('value="remove_field">')[1].split("</form>")[0]


def test_used_by_names_on_demand_readers_and_remove_offers_only_what_can_go(
    client: Client, people: dict[str, User]
) -> None:
    client.force_login(people["author"])
    page = client.get(VIEW_URL).content.decode()
    # employee_risk_signals reads career_velocity (its source is the whole view): the schema says so.
    used_by = _schema_row(page, "career_velocity")
    assert f'<a href="{ODFV_URL}" title="an on-demand view reads it">employee_risk_signals</a>' in used_by
    assert "attrition_model_v1[4]" in used_by
    form = _remove_form(page)
    option = re.search(r'<option value="career_velocity"[^>]*>[^<]*</option>', form)
    assert option and " disabled" in option.group(0) and "read by on-demand employee_risk_signals" in option.group(0)
    assert "Feast refuses to drop a field one reads" in form and f'href="{ODFV_URL}"' in form
    # A view no on-demand view reads offers every field, enabled.
    client_page = client.get(f"/projects/{PROJECT}/feature-views/department_features/").content.decode()
    assert "<td" in _schema_row(client_page, "headcount") and "on-demand" not in _schema_row(client_page, "headcount")
    assert " disabled" not in _remove_form(client_page) and 'id="remove-field-hint"' not in client_page


def test_a_refused_proposal_comes_back_with_what_was_typed(client: Client, people: dict[str, User]) -> None:
    client.force_login(people["author"])
    typed = {
        "op": "remove_field",
        "field": "career_velocity",
        "title": "Drop career velocity",
        "cr_description": "Nobody trusts this number since the re-org & <reorg>.",
    }
    response = client.post(VIEW_URL + "propose/", typed, follow=True)
    page = response.content.decode()
    assert "Nothing was proposed" in page and not ChangeRequest.objects.exists()
    details = page.split("<details open><summary>Remove a field</summary>")[1].split("</details>")[0]
    assert 'role="alert">Nothing was proposed:' in details and "employee_risk_signals" in details
    assert (
        '<textarea name="cr_description" rows="2">Nobody trusts this number since the re-org &amp; &lt;reorg&gt;.</textarea>'
        in details
    )
    assert 'value="Drop career velocity"' in details
    assert '<input type="checkbox" name="submit" value="1"> Submit' in details  # it was unticked
    # Only the refused form is filled in, and only once.
    assert page.count("Nobody trusts this number") == 1
    again = client.get(VIEW_URL).content.decode()
    assert "Nobody trusts this number" not in again and "<details open>" not in again


def test_a_refused_ttl_change_keeps_its_value_and_reason(client: Client, people: dict[str, User]) -> None:
    client.force_login(people["author"])
    typed = {"op": "set_ttl", "ttl_days": "soon", "cr_description": "Shorter is fresher."}
    page = client.post(VIEW_URL + "propose/", typed, follow=True).content.decode()
    details = page.split("<details open><summary>Change the TTL</summary>")[1].split("</details>")[0]
    assert 'value="soon"' in details and "Shorter is fresher." in details
