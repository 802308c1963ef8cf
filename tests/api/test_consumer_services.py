"""Registering models against feature services: permissions, validation, audit."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User

from catalog.exceptions import DuplicateObject, InvalidInput, NotPermitted, ObjectNotFound
from catalog.models import AuditEvent, CatalogObject, ModelConsumer, Status, Team
from catalog.services.consumers import model_consumer_delete, model_consumer_register
from tests.api.conftest import PROJECT

pytestmark = pytest.mark.django_db


def service(name: str = "attrition_model_v2") -> CatalogObject:
    return CatalogObject.objects.get(project__name=PROJECT, kind="feature_service", name=name)


def register(actor: User, **kw: Any) -> ModelConsumer:
    args: dict[str, Any] = {"service": service(), "name": "churn-xgb", "version": "3", "owner": "people-analytics"}
    args.update(kw)
    return model_consumer_register(actor=actor, **args)


def test_a_proposer_registers_a_model_with_an_audit_event(synced: None, proposer: User) -> None:
    Team.objects.get_or_create(name="people-analytics")
    consumer = register(proposer, link="https://models.example.com/churn", contract_hash="abc")
    assert (consumer.name, consumer.version, consumer.created_by) == ("churn-xgb", "3", proposer)
    assert consumer.team is not None and consumer.team.name == "people-analytics"
    event = AuditEvent.objects.get(action="model_consumer.registered")
    assert event.object_id == str(consumer.pk) and event.actor == proposer
    assert event.after["service"] == f"{PROJECT}/attrition_model_v2"


@pytest.mark.parametrize("role", ["approver", "operator"])
def test_roles_above_proposer_may_register(synced: None, role: str, request: pytest.FixtureRequest) -> None:
    user = request.getfixturevalue(role)
    assert register(user).pk is not None


@pytest.mark.parametrize("role", ["viewer", "outsider"])
def test_viewers_and_outsiders_may_not_register(synced: None, role: str, request: pytest.FixtureRequest) -> None:
    with pytest.raises(NotPermitted):
        register(request.getfixturevalue(role))
    assert not ModelConsumer.objects.exists() and not AuditEvent.objects.filter(action__startswith="model_").exists()


def test_a_duplicate_is_a_conflict_and_changes_nothing(synced: None, proposer: User) -> None:
    register(proposer)
    with pytest.raises(DuplicateObject, match="churn-xgb@3"):
        register(proposer)
    assert ModelConsumer.objects.count() == 1
    assert AuditEvent.objects.filter(action="model_consumer.registered").count() == 1


def test_a_removed_service_or_a_view_cannot_be_consumed(synced: None, proposer: User) -> None:
    CatalogObject.objects.filter(pk=service().pk).update(status=Status.REMOVED)
    with pytest.raises(ObjectNotFound, match="removed"):
        register(proposer)
    view = CatalogObject.objects.get(project__name=PROJECT, kind="feature_view", name="employee_features")
    with pytest.raises(ObjectNotFound, match="not a feature service"):
        register(proposer, service=view)
    assert not ModelConsumer.objects.exists()


def test_bad_fields_name_the_field(synced: None, proposer: User) -> None:
    with pytest.raises(InvalidInput) as caught:
        register(proposer, name="", link="not a url")
    assert {"name", "link"} <= set(caught.value.details)
    assert not ModelConsumer.objects.exists()


def test_the_creator_a_team_member_or_an_admin_may_delete(
    synced: None, proposer: User, approver: User, viewer: User, admin_user: User
) -> None:
    team = Team.objects.get_or_create(name="people-analytics")[0]
    consumer = register(proposer)
    with pytest.raises(NotPermitted):
        model_consumer_delete(actor=approver, consumer=consumer)
    team.members.add(viewer)
    model_consumer_delete(actor=viewer, consumer=consumer)
    assert not ModelConsumer.objects.exists()
    event = AuditEvent.objects.get(action="model_consumer.deleted")
    assert event.before["name"] == "churn-xgb" and event.actor == viewer
    for actor in (proposer, admin_user):
        consumer = register(proposer, version=actor.username)
        model_consumer_delete(actor=actor, consumer=consumer)
    assert not ModelConsumer.objects.exists()
