"""The chapter segment schema (``schemas/segment.schema.json``) and a validator for it.

The schema file is the single source of truth: :func:`segment_errors` interprets the JSON
Schema keywords it uses (``type``, ``required``, ``additionalProperties``, ``properties``,
``minLength``, ``pattern``, ``minimum``, ``maximum``, ``items``, ``minItems``,
``maxItems``, ``enum``) without a jsonschema dependency; the tests check it agrees with the
``jsonschema`` package. Non-finite numbers (``NaN``, which Python's ``json`` accepts) are
rejected too.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

_TYPES: dict[str, Callable[[object], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


@cache
def segment_schema() -> dict[str, Any]:
    """The parsed ``segment.schema.json`` shipped in this package."""
    text = resources.files("indextts_mlx").joinpath("schemas/segment.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def segment_errors(segment: object) -> list[tuple[str, str]]:
    """Every way ``segment`` (one parsed JSONL line) breaks the schema.

    Returns:
        ``(field, message)`` pairs; ``field`` is ``""`` for the line as a whole and
        ``name[i]`` inside arrays. Empty when the segment is valid.
    """
    return _check(segment, segment_schema(), "")


def _check(value: object, schema: dict[str, Any], where: str) -> list[tuple[str, str]]:
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else types
        if not any(_TYPES[t](value) for t in names):
            return [(where, f"must be {' or '.join(names)}, got {_describe(value)}")]
    if isinstance(value, float) and not math.isfinite(value):
        return [(where, f"must be a finite number, got {value}")]
    errors: list[tuple[str, str]] = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append((where, f"must be one of {', '.join(map(str, schema['enum']))}"))
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            errors.append((where, "must not be empty"))
        elif "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append((where, "must contain a non-space character"))
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append((where, f"must be ≥ {schema['minimum']}, got {value}"))
        if "maximum" in schema and value > schema["maximum"]:
            errors.append((where, f"must be ≤ {schema['maximum']}, got {value}"))
    if isinstance(value, list):
        if not schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", math.inf):
            errors.append((where, f"must have {_count(schema)} items, got {len(value)}"))
        for i, item in enumerate(value):
            errors += _check(item, schema.get("items", {}), f"{where}[{i}]")
    if isinstance(value, dict):
        errors += _check_object(value, schema, where)
    return errors


def _check_object(
    value: dict[str, Any], schema: dict[str, Any], where: str
) -> list[tuple[str, str]]:
    prefix = f"{where}." if where else ""
    properties = schema.get("properties", {})
    required = schema.get("required", [])
    errors = [(prefix + name, "is required") for name in required if name not in value]
    if schema.get("additionalProperties", True) is False:
        known = ", ".join(properties)
        errors += [
            (prefix + name, f"is not a known field (known: {known})")
            for name in value
            if name not in properties
        ]
    for name, sub in properties.items():
        if name in value:
            errors += _check(value[name], sub, prefix + name)
    return errors


def _count(schema: dict[str, Any]) -> str:
    lo, hi = schema.get("minItems", 0), schema.get("maxItems")
    return str(lo) if lo == hi else f"{lo}..{hi if hi is not None else ''}"


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    kinds: dict[type, str] = {str: "a string", list: "an array", dict: "an object"}
    kind = kinds.get(type(value))
    return kind or f"{type(value).__name__} {value!r}"
