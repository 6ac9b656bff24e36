"""The one parser of ``name:arg,key=value`` spec strings.

Aggregators (``"bucketing:2+median"``), attacks (``"ipm:eps=0.5"``) and compressors
(``"rand_k:10"``) are all written in one grammar::

    spec  := part ("+" part)*          (only where a chain is allowed)
    part  := name [":" item ("," item)*]
    item  := value                     (the positional argument; only the first item)
           | key "=" value

Names are lower-cased with ``-`` read as ``_``; values stay strings, and the consumer converts
them with :func:`option` so that each error names its operation and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class SpecPart:
    """One ``name:arg,key=value`` part of a spec string."""

    name: str
    positional: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    text: str = ""


def normalise_name(name: str) -> str:
    """``"Sign-Flip "`` -> ``"sign_flip"``: the form registries are keyed by."""
    return name.strip().lower().replace("-", "_")


def parse_part(op: str, text: str) -> SpecPart:
    """Parse one part; ``op`` names the caller in errors (``[make_attack] ...``)."""
    name, _, rest = text.strip().partition(":")
    name = normalise_name(name)
    if not name:
        raise ValueError(f"[{op}] empty name in spec {text!r}; write e.g. 'median' or 'ipm:eps=0.5'")
    positional = None
    options: dict[str, str] = {}
    if rest.strip():
        for i, item in enumerate(rest.split(",")):
            key, eq, value = item.partition("=")
            key, value = key.strip(), value.strip()
            if eq:
                if not key or not value:
                    raise ValueError(f"[{op}] cannot read option {item.strip()!r} in {text.strip()!r}; write key=value")
                if key in options:
                    raise ValueError(f"[{op}] option {key!r} given twice in {text.strip()!r}")
                options[key] = value
            elif i == 0 and key:
                positional = key
            else:
                raise ValueError(f"[{op}] cannot read option {item.strip()!r} in {text.strip()!r}; write key=value "
                                 "(only the first option may be positional)")
    return SpecPart(name, positional, options, text.strip())


def parse_spec(op: str, text: object, *, chain: bool = True) -> list[SpecPart]:
    """Parse a whole spec: its ``+``-separated parts, or exactly one part if not ``chain``."""
    if not isinstance(text, str) or not text.strip():
        raise TypeError(f"[{op}] spec must be a non-empty string, got {text!r}")
    pieces = text.split("+") if chain else [text]
    if any(not p.strip() for p in pieces):
        raise ValueError(f"[{op}] empty part in spec {text!r}; parts are joined by a single '+'")
    return [parse_part(op, p) for p in pieces]


def option(op: str, part: SpecPart, key: str, value: str, convert: Callable[[str], T]) -> T:
    """Convert one option value, with an error that names the op, the option and the spec."""
    try:
        return convert(value)
    except (TypeError, ValueError):
        kind = getattr(convert, "__name__", "value")
        raise ValueError(f"[{op}] option {key}={value!r} of {part.name!r} in {part.text!r} "
                         f"must be a {kind}") from None
