"""A refused "Propose a change" form comes back filled in: what the person typed (the reason above all) is
kept in their session for the object page's next render, with why it was refused."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from catalog.models import CatalogObject

SESSION_KEY = "proposal_draft"
FIELDS = (
    "op",
    "field",
    "dtype",
    "description",
    "ttl_days",
    "reason",
    "reference",
    "owner",
    "tags",
    "title",
    "cr_description",
    "submit",
)


def proposal_draft_keep(request: HttpRequest, obj: CatalogObject, error: str) -> None:
    """Remember a refused proposal's form (and the refusal) for the object's page."""
    values = {name: request.POST.get(name, "")[:10000] for name in FIELDS}
    request.session[SESSION_KEY] = {"object": obj.pk, "error": error, **values}


def proposal_draft_take(request: HttpRequest, obj: CatalogObject) -> dict[str, Any] | None:
    """The refused proposal on this object's form, once (None when there is none)."""
    draft = request.session.get(SESSION_KEY)
    if not isinstance(draft, dict) or draft.get("object") != obj.pk:
        return None
    del request.session[SESSION_KEY]
    return draft
