"""`{% service_contract obj as c %}`: a feature service's model contract for its page."""

from __future__ import annotations

from typing import Any

from django import template

from catalog.contracts import contract_for_service, contract_history, pinned_models

register = template.Library()


@register.simple_tag(takes_context=True)
def service_contract(context: Any, service: Any) -> dict[str, Any]:
    """The current contract, the models pinning one (matching or not) and the hash of every recorded version.

    Uses the page's `vector`, `history` and `consumers` when it has them (no extra queries).
    """
    current = contract_for_service(service, context.get("vector"))
    history = contract_history(service, context.get("history"))
    versions = []
    previous: str | None = None
    for v in reversed(history):  # oldest first, to flag where the contract changed
        digest = v.contract.hash if v.contract else None
        changed = digest is not None and previous is not None and digest != previous
        versions.append(
            {"version": v.version, "recorded_at": v.recorded_at, "change": v.change, "hash": digest, "changed": changed}
        )
        previous = digest or previous
    return {
        "contract": current,
        "pinned": pinned_models(service, current, context.get("consumers")),
        "versions": list(reversed(versions)),
    }
