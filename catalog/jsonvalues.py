"""One converter from a Feast value to JSON, for everything the portal shows or returns of feature values
(online preview, skew examples, training-dataset rows and their Map/Struct cells).

- numbers, strings and booleans as they are; NaN and infinities as the strings "nan", "inf", "-inf";
- timestamps (UnixTimestamp) as ISO 8601 text;
- bytes (Bytes, PdfBytes, ImageBytes) as lowercase hex;
- Decimal as its exact decimal text (a JSON number would round it), UUID and TimeUuid as their text;
- lists and sets as arrays; Map, Struct and Json values as JSON objects, never a Python repr;
- numpy scalars and arrays as their Python values.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID


def json_value(value: Any) -> Any:
    """The JSON form of one Feast value (see the module docstring)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, list | tuple | set | frozenset):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return json_value(value.tolist())
    if hasattr(value, "isoformat"):  # pandas Timestamp
        return value.isoformat()
    return str(value)
