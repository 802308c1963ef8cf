"""The typed schema of a proposed edit: one DRF serializer per `op`.

The API's `edits` and the object pages' edit forms both produce these dicts; `validated_edits` checks their
shape (types, lengths, ranges, names, dtypes) in one place, inside `change_request_create` and
`change_request_revise`, before the gateway applies them to the registry's protos. The gateway then only
checks them against the registry (the object, field or service exists; the field is not already there).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rest_framework import serializers

from catalog import feast_gateway as gateway
from catalog.exceptions import InvalidInput

MAX_EDITS = 500
TEN_YEARS = 10 * 365 * 86400
KINDS = ("entity", "data_source", "feature_view", "feature_service")


def _name(**kwargs: Any) -> serializers.CharField:
    return serializers.CharField(max_length=255, trim_whitespace=True, **kwargs)


class _Dtype(serializers.CharField):
    """A Feast type name as users write it (Int64, Float32, Array(String), ...)."""

    def to_internal_value(self, data: Any) -> str:
        value = str(super().to_internal_value(data))
        try:
            gateway.dtype_value(value)
        except ValueError:
            known = "Int32, Int64, Float32, Float64, String, Bool, Bytes, UnixTimestamp, Array(...)"
            raise serializers.ValidationError(f"unknown dtype {value!r} (known: {known})") from None
        return value


class _FieldName(serializers.CharField):
    def to_internal_value(self, data: Any) -> str:
        value = str(super().to_internal_value(data))
        if not value.isidentifier():
            raise serializers.ValidationError(f"{value!r} is not a valid field name (letters, digits, _)")
        return value


class SetMetadataEdit(serializers.Serializer[Any]):
    """Description, owner and/or tags of any object (tags replace the object's tags)."""

    kind = serializers.ChoiceField(choices=KINDS)
    name = _name()
    description = serializers.CharField(max_length=10000, required=False, allow_blank=True, trim_whitespace=False)
    owner = serializers.CharField(max_length=255, required=False, allow_blank=True)
    tags = serializers.DictField(child=serializers.CharField(max_length=1000, allow_blank=True), required=False)

    def validate_tags(self, tags: dict[str, str]) -> dict[str, str]:
        if any(not k or len(k) > 255 for k in tags):
            raise serializers.ValidationError("tag keys are 1 to 255 characters")
        return tags

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not {"description", "owner", "tags"} & set(attrs):
            raise serializers.ValidationError("set_metadata needs description, owner or tags")
        return attrs


class AddFieldEdit(serializers.Serializer[Any]):
    view = _name()
    field = _FieldName(max_length=255)
    dtype = _Dtype(max_length=100)
    description = serializers.CharField(max_length=10000, required=False, allow_blank=True, default="")


class RemoveFieldEdit(serializers.Serializer[Any]):
    view = _name()
    field = _name()


class ChangeDtypeEdit(serializers.Serializer[Any]):
    view = _name()
    field = _name()
    dtype = _Dtype(max_length=100)


class SetTtlEdit(serializers.Serializer[Any]):
    view = _name()
    ttl_seconds = serializers.IntegerField(
        min_value=0, max_value=TEN_YEARS, help_text="Whole seconds, 0 (never expires) to 10 years."
    )


class DeprecateEdit(serializers.Serializer[Any]):
    kind = serializers.ChoiceField(choices=("feature_view", "feature_service"))
    name = _name()
    reason = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")


class RemoveFromServiceEdit(serializers.Serializer[Any]):
    service = _name()
    view = _name()
    feature = _name()


class DeleteEdit(serializers.Serializer[Any]):
    kind = serializers.ChoiceField(choices=KINDS)
    name = _name()


EDIT_SCHEMAS: dict[str, type[serializers.Serializer[Any]]] = {
    "set_metadata": SetMetadataEdit,
    "add_field": AddFieldEdit,
    "remove_field": RemoveFieldEdit,
    "change_dtype": ChangeDtypeEdit,
    "set_ttl": SetTtlEdit,
    "deprecate": DeprecateEdit,
    "remove_from_service": RemoveFromServiceEdit,
    "delete": DeleteEdit,
}


def _message(errors: Any) -> str:
    if isinstance(errors, Mapping):
        return "; ".join(
            f"{k if k != 'non_field_errors' else ''}{': ' if k != 'non_field_errors' else ''}{_message(v)}"
            for k, v in errors.items()
        )
    if isinstance(errors, list | tuple):
        return " ".join(_message(e) for e in errors)
    return str(errors)


def validated_edits(edits: Any) -> list[dict[str, Any]]:
    """Each edit checked against its op's schema: the cleaned dicts (InvalidInput naming the edit, its op and
    the field otherwise; nothing is planned)."""
    if not isinstance(edits, Sequence) or isinstance(edits, str | bytes) or not edits:
        raise InvalidInput("a change needs at least one edit", {"edits": ["empty"]})
    if len(edits) > MAX_EDITS:
        raise InvalidInput(f"at most {MAX_EDITS} edits per change request", {"edits": ["too many"]})
    cleaned: list[dict[str, Any]] = []
    for position, edit in enumerate(edits, start=1):
        if not isinstance(edit, Mapping):
            raise InvalidInput(f"edit {position} is not an object", {"edits": [f"{position}: not an object"]})
        op = edit.get("op")
        schema = EDIT_SCHEMAS.get(op) if isinstance(op, str) else None
        if schema is None:
            raise InvalidInput(
                f"edit {position}: unknown op {op!r} (one of {', '.join(EDIT_SCHEMAS)})", {"op": ["unknown"]}
            )
        data = schema(data={k: v for k, v in edit.items() if k != "op"})
        if not data.is_valid():
            raise InvalidInput(f"edit {position} ({op}): {_message(data.errors)}", dict(data.errors))
        cleaned.append({"op": op, **data.validated_data})
    return cleaned
