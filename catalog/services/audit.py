"""audit_record: the only writer of AuditEvent."""

from __future__ import annotations

from typing import Any

from catalog.models import AuditEvent


def _actor_name(actor: Any) -> str:
    if actor is None:
        return "system"
    return str(actor.get_username())


def audit_record(
    *,
    actor: Any,
    action: str,
    obj: Any = None,
    object_type: str = "",
    object_id: str = "",
    object_repr: str = "",
    before: Any = None,
    after: Any = None,
    request_id: str = "",
    job_run_id: int | None = None,
) -> AuditEvent:
    """Append one audit event. `action` is "<entity>.<past_verb>"; jobs pass actor=None and job_run_id."""
    if obj is not None:
        object_type = object_type or obj._meta.model_name
        object_id = object_id or str(obj.pk)
        object_repr = object_repr or str(obj)[:500]
    return AuditEvent.objects.create(
        actor=actor if actor is not None and actor.is_authenticated else None,
        actor_name=_actor_name(actor),
        action=action,
        object_type=object_type,
        object_id=object_id,
        object_repr=object_repr[:500],
        before=before,
        after=after,
        request_id=request_id,
        job_run_id=job_run_id,
    )


def audit_event_build(**kwargs: Any) -> AuditEvent:
    """An unsaved AuditEvent for bulk insertion by services that record many at once (sync)."""
    actor = kwargs.pop("actor", None)
    return AuditEvent(actor=actor, actor_name=_actor_name(actor), **kwargs)
