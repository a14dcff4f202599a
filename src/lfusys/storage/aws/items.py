"""DynamoDB items to and from plain Python values (the low-level client speaks ``{"S": "..."}``)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    """Attribute values for DynamoDB; ``None`` values are left out (an absent attribute is "no value")."""
    return {name: _SERIALIZER.serialize(value) for name, value in values.items() if value is not None}


def to_value(value: Any) -> Any:
    """One attribute value, e.g. for an expression's ``:placeholder``."""
    return _SERIALIZER.serialize(value)


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """Plain values; whole numbers come back as ``int`` (DynamoDB numbers arrive as ``Decimal``)."""
    return {name: _plain(_DESERIALIZER.deserialize(value)) for name, value in item.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, set):
        return {_plain(member) for member in value}
    if isinstance(value, list):
        return [_plain(member) for member in value]
    if isinstance(value, dict):
        return {key: _plain(member) for key, member in value.items()}
    return value
