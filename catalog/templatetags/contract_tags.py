"""`{% service_contract service as contract %}`: a feature service's model contract for its page."""

from __future__ import annotations

from typing import Any

from django import template

from catalog.contracts import contract_for_service, contract_history, pinned_models

register = template.Library()


@register.simple_tag
def service_contract(service: Any) -> dict[str, Any]:
    """The current contract, the models pinning one (matching or not) and the hash of every recorded version."""
    current = contract_for_service(service)
    history = contract_history(service)
    versions = []
    previous: str | None = None
    for v in reversed(history):  # oldest first, to flag where the contract changed
        digest = v.contract.hash if v.contract else None
        versions.append(
            {
                "version": v.version,
                "recorded_at": v.recorded_at,
                "change": v.change,
                "hash": digest,
                "changed": digest is not None and previous is not None and digest != previous,
            }
        )
        previous = digest or previous
    return {
        "contract": current,
        "pinned": pinned_models(service, current),
        "versions": list(reversed(versions)),
    }
