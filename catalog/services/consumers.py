"""Registering models (consumers) against feature services, and removing them."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from catalog.exceptions import DuplicateObject, InvalidInput, NotPermitted, ObjectNotFound
from catalog.models import CatalogObject, ModelConsumer, Status
from catalog.permissions import can_delete_model, can_register_model
from catalog.services.audit import audit_record
from catalog.services.teams import owning_team


def _snapshot(consumer: ModelConsumer) -> dict[str, Any]:
    return {
        "service": f"{consumer.service.project.name}/{consumer.service.name}",
        "name": consumer.name,
        "version": consumer.version,
        "owner": consumer.owner,
        "team": consumer.team.name if consumer.team else None,
        "link": consumer.link,
        "description": consumer.description,
        "contract_hash": consumer.contract_hash,
    }


@transaction.atomic
def model_consumer_register(
    *,
    actor: Any,
    service: CatalogObject,
    name: str,
    version: str,
    owner: str,
    link: str = "",
    description: str = "",
    contract_hash: str = "",
) -> ModelConsumer:
    """Register model `name@version` as a consumer of a (present) feature service.

    Raises NotPermitted (below proposer), ObjectNotFound (not a feature service, or removed),
    DuplicateObject (already registered), InvalidInput (bad fields).
    """
    if not can_register_model(actor):
        raise NotPermitted("Registering a model needs the proposer role or above.")
    if service.kind != CatalogObject.Kind.FEATURE_SERVICE:
        raise ObjectNotFound(f"{service.name} is not a feature service.")
    # Re-read under a row lock: a sync removing the service at the same time waits or wins cleanly.
    current = CatalogObject.objects.select_for_update().filter(pk=service.pk).values_list("status", flat=True).first()
    if current is None or current == Status.REMOVED:
        raise ObjectNotFound(f"Feature service {service.name} is removed from the registry.")
    consumer = ModelConsumer(
        service=service,
        name=name.strip(),
        version=version.strip(),
        owner=owner.strip(),
        team=owning_team(owner=owner),
        link=link.strip(),
        description=description,
        contract_hash=contract_hash.strip(),
        created_by=actor if actor is not None and actor.is_authenticated else None,
    )
    try:
        consumer.full_clean()
    except ValidationError as exc:
        errors = exc.message_dict
        if any("catalog_consumer_unique" in m or "already exists" in m for m in errors.get("__all__", [])):
            raise DuplicateObject(
                f"Model {consumer.name}@{consumer.version} is already registered against {service.name}."
            ) from None
        raise InvalidInput("Invalid model registration.", details=errors) from None
    try:
        with transaction.atomic():  # a savepoint: a concurrent duplicate surfaces as 409, not a broken transaction
            consumer.save()
    except IntegrityError:
        raise DuplicateObject(
            f"Model {consumer.name}@{consumer.version} is already registered against {service.name}."
        ) from None
    audit_record(actor=actor, action="model_consumer.registered", obj=consumer, after=_snapshot(consumer))
    return consumer


@transaction.atomic
def model_consumer_delete(*, actor: Any, consumer: ModelConsumer) -> None:
    """Remove a registered model (its creator, a member of its team, or an admin)."""
    if not can_delete_model(actor, consumer):
        raise NotPermitted("Only the model's creator, a member of its team or an admin may delete it.")
    before = _snapshot(consumer)
    pk = consumer.pk
    deleted, _ = ModelConsumer.objects.filter(pk=pk).delete()
    if not deleted:
        raise ObjectNotFound(f"Model {consumer} is already deleted.")
    audit_record(
        actor=actor,
        action="model_consumer.deleted",
        object_type="modelconsumer",
        object_id=str(pk),
        object_repr=str(consumer),
        before=before,
    )
