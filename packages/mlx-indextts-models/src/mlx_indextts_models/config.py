"""Model configurations as records: :func:`from_dict`, the one builder of an ``Args``
dataclass from a JSON-like mapping, and :func:`to_dict`, its inverse.

A record holds the dataclass's fields by name, nested dataclasses as nested mappings and
tuples as lists (what ``json`` makes of :func:`dataclasses.asdict`). :func:`from_dict` is
strict: a key that is not a field is an error naming it; fields the record omits keep
their defaults; nested dataclass fields are built recursively and tuples restored from
their field types, so ``from_dict(type(a), to_dict(a)) == a`` for every ``Args`` here.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A record that does not fit its dataclass (unknown keys, wrong shapes of values)."""


@dataclass
class VectorArgs:
    """The width of a plain table file (no model around it): ``semantic_stats`` (semantic
    dim, 1024), ``emotion_matrix`` (GPT emovec dim, 1280), ``speaker_matrix`` (style dim,
    192)."""

    dim: int


def to_dict(args: object) -> dict[str, Any]:
    """A dataclass instance as a record (nested dataclasses become dicts; tuples stay
    tuples until JSON makes lists of them)."""
    if not dataclasses.is_dataclass(args) or isinstance(args, type):
        raise TypeError(f"expected a dataclass instance, got {args!r}")
    return dataclasses.asdict(args)


def from_dict(cls: type[T], record: Mapping[str, object]) -> T:
    """Build the dataclass ``cls`` from ``record``, strictly (module docstring).

    Raises:
        ConfigError: keys that are not fields of ``cls`` (or of a nested dataclass), a
            nested value that is not a mapping, a tuple of the wrong length, or values the
            dataclass itself rejects (its ``__post_init__``).
    """
    try:
        return _build(cls, record)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{cls.__name__}: {exc}") from exc


def unsupported_settings(args: object, supported: Mapping[str, object]) -> dict[str, object]:
    """The fields of ``args`` named in ``supported`` whose values differ from the one
    supported value there (name → value found): what a port that implements only
    IndexTTS-2's variant refuses."""
    return {
        name: getattr(args, name)
        for name, value in supported.items()
        if getattr(args, name) != value
    }


def own_fields(cls: type, mapping: Mapping[str, object]) -> dict[str, object]:
    """The entries of ``mapping`` that are init fields of the dataclass ``cls``: for a
    section of an upstream config that mixes several classes' settings (``cfg.gpt``). A
    record of our own goes to :func:`from_dict` whole."""
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    return {k: v for k, v in mapping.items() if k in names}


def _build(cls: type[T], record: object) -> T:
    if not isinstance(record, Mapping):
        raise ConfigError(f"expected an object for {cls.__name__}, got {record!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(set(record) - names)
    if unknown:
        raise ConfigError(f"{cls.__name__} has no field(s) {', '.join(map(str, unknown))}")
    kwargs = {name: _convert(hints[name], value) for name, value in record.items()}
    return cls(**kwargs)


def _convert(tp: Any, value: object) -> object:
    """A JSON value as the field type ``tp`` wants it (dataclasses, tuples)."""
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        return _convert(options[0], value) if len(options) == 1 else value
    if dataclasses.is_dataclass(tp):
        return _build(typing.cast(type, tp), value)
    if origin is tuple or tp is tuple:
        return _tuple(typing.get_args(tp), value)
    return value


def _tuple(args: tuple[Any, ...], value: object) -> tuple[object, ...]:
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"expected a list, got {value!r}")
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_convert(args[0], v) for v in value)
    if args:
        if len(args) != len(value):
            raise ConfigError(f"expected {len(args)} items, got {value!r}")
        return tuple(_convert(a, v) for a, v in zip(args, value, strict=True))
    return tuple(value)
