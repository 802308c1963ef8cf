"""Browser forms (input parsing only; services hold the rules)."""

from __future__ import annotations

from django import forms


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
