"""The approval count on a change request says what is needed: one sign-off per owner team, named."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from catalog.models import CatalogObject
from catalog.services.change_requests import approval_status, change_request_approve, change_request_create
from catalog.services.consumers import model_consumer_register
from tests.governance.conftest import PROJECT

pytestmark = pytest.mark.django_db


def _count(client: Client, url: str) -> str:
    return client.get(url).content.decode().split('id="approval-count">')[1].split("</p>")[0]


def test_two_owner_teams_read_as_two_sign_offs_named(client: Client, people: dict[str, User]) -> None:
    # Moving department_features to people-analytics: the old owner and the new one both sign off.
    move = {
        "op": "set_metadata",
        "kind": "feature_view",
        "name": "department_features",
        "tags": {"team": "people-analytics", "domain": "org"},
    }
    cr = change_request_create(actor=people["author"], project=PROJECT, title="move", edits=[move], submit=True)
    assert cr.required_approvals == 1 and len(cr.required_teams) == 2
    client.force_login(people["viewer"])
    count = _count(client, cr.get_absolute_url())
    assert "<strong>0 of 2 sign-offs</strong>: hr-data-platform, people-analytics." in count
    assert "0 of 1" not in count
    change_request_approve(cr=cr, actor=people["hr_approver"])
    count = _count(client, cr.get_absolute_url())
    assert "<strong>1 of 2 sign-offs</strong>: ✔ hr-data-platform, people-analytics." in count
    change_request_approve(cr=cr, actor=people["approver1"])
    assert "<strong>2 of 2 sign-offs</strong>" in _count(client, cr.get_absolute_url())


def test_a_breaking_change_of_one_team_needs_another_approver_too(people: dict[str, User]) -> None:
    # A registered model reads attrition_model_v1: dropping a feature from it is breaking (two approvals),
    # and only the service's owner team must sign off, so the second approval may come from anyone.
    service = CatalogObject.objects.get(project__name=PROJECT, kind="feature_service", name="attrition_model_v1")
    model_consumer_register(actor=people["author"], service=service, name="churn", version="1", owner="x")
    edit = {
        "op": "remove_from_service",
        "service": "attrition_model_v1",
        "view": "employee_features",
        "feature": "tenure",
    }
    cr = change_request_create(actor=people["author"], project=PROJECT, title="drop", edits=[edit], submit=True)
    assert cr.required_approvals == 2 and [t["name"] for t in cr.required_teams] == ["people-analytics"]
    signoffs = approval_status(cr)["signoffs"]
    assert (signoffs["given"], signoffs["needed"]) == (0, 2)
    assert [s["label"] for s in signoffs["slots"]] == ["people-analytics", "another approver"]
    cr = change_request_approve(cr=cr, actor=people["approver1"])
    assert approval_status(cr)["signoffs"]["given"] == 1
    cr = change_request_approve(cr=cr, actor=people["outside_approver"])
    assert approval_status(cr)["signoffs"]["given"] == 2 and approval_status(cr)["satisfied"]
