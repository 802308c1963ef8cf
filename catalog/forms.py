"""Browser forms (input parsing only; services hold the rules)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm


class ModelConsumerForm(forms.Form):
    """Register model X (name, version, owner, link) as a consumer of a feature service."""

    name = forms.CharField(max_length=255, help_text="The model's name, e.g. attrition-classifier.")
    version = forms.CharField(max_length=64, initial="1")
    owner = forms.CharField(max_length=255, help_text="An email, an alias or a team name.")
    link = forms.URLField(
        max_length=1000, required=False, assume_scheme="https", help_text="Model registry, repository or dashboard."
    )
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    contract_hash = forms.CharField(
        max_length=64, required=False, help_text="The vector contract the model was trained against (optional)."
    )


class ThrottledAuthenticationForm(AuthenticationForm):
    """Django's sign-in form, locked out after repeated failures (catalog/services/logins.py)."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "locked_out": "Too many failed sign-ins for this account or from this address: try again in %(minutes)s minutes.",
    }

    def clean(self) -> dict[str, Any]:
        from django.conf import settings

        from catalog.services.logins import client_address, login_failed, login_locked_out, login_succeeded

        username = str(self.cleaned_data.get("username") or "")
        address = client_address(self.request)
        minutes = max(1, settings.PORTAL_LOGIN_LOCKOUT_SECONDS // 60)
        if username and login_locked_out(username=username, address=address):
            login_failed(username=username, address=address)
            raise forms.ValidationError(
                self.error_messages["locked_out"], code="locked_out", params={"minutes": minutes}
            )
        try:
            cleaned: dict[str, Any] = super().clean()
        except forms.ValidationError:
            if username:
                login_failed(username=username, address=address)
            raise
        login_succeeded(username=username)
        return cleaned
