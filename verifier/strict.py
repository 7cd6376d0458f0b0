"""Strict reading of JSON the verifier is asked to believe: one value has one encoding.

Every JSON member of an extract must be exactly the RFC 8785 bytes of what it parses to: no duplicate
keys, no NaN or Infinity, no `6.0` for `6`, no insignificant white space, no escapes that RFC 8785 does
not write. A forger can then add no byte that no hash covers, and two readers cannot disagree on a value.
The field helpers below name the field that is wrong and what it should be.
"""

import json
import re
from collections.abc import Mapping
from typing import Any

from verifier.canonical import canonical_bytes
from verifier.errors import MalformedInput

MAX_DEPTH = 64
_HEX64 = re.compile(r"[0-9a-f]{64}")


def _reject_constant(name: str) -> Any:
    raise MalformedInput(f"{name} is not a JSON number")


def _no_duplicates(what: str) -> Any:
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise MalformedInput(f"{what} repeats a key: {key!r:.60} twice")
            result[key] = value
        return result

    return hook


def _depth(data: bytes) -> int:
    """Nesting depth, counted on the bytes before parsing so deep input cannot exhaust the stack."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def parse_json(data: bytes, what: str) -> Any:
    """Parse `data` as strict JSON (UTF-8, no key twice in an object, no NaN or Infinity, bounded nesting)
    without asking for canonical form: files a person writes (trust roots, access configurations) are
    read with it. Raise MalformedInput naming `what`."""
    if _depth(data) > MAX_DEPTH:
        raise MalformedInput(f"{what} nests deeper than {MAX_DEPTH} levels")
    try:
        text = data.decode("utf-8")
        return json.loads(text, object_pairs_hook=_no_duplicates(what), parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise MalformedInput(f"{what} is not UTF-8: {exc}") from exc
    except MalformedInput as exc:
        raise MalformedInput(f"{what}: {exc}") from exc
    except (ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError and also an integer of more digits than Python will convert, which
        # a forger can put in any field: it must be a refusal, not a traceback.
        raise MalformedInput(f"{what} is not JSON this verifier reads: {str(exc)[:120]}") from exc


def parse_canonical(data: bytes, what: str) -> Any:
    """Parse `data` as JSON that must be in RFC 8785 canonical form; raise MalformedInput naming `what`."""
    value = parse_json(data, what)
    if canonical_bytes(value) != data:
        raise MalformedInput(
            f"{what} is not in RFC 8785 canonical form (re-encoding it gives other bytes: white space, key order, "
            "number form or string escapes differ)"
        )
    return value


def exact_object(value: Any, what: str, required: set[str] | frozenset[str],
                 optional: set[str] | frozenset[str] = frozenset()) -> dict[str, Any]:
    """`value` as an object with exactly the `required` keys and possibly some `optional` ones."""
    if not isinstance(value, dict):
        raise MalformedInput(f"{what} must be a JSON object, got {type(value).__name__}")
    missing = sorted(set(required) - set(value))
    unknown = sorted(set(value) - set(required) - set(optional))
    if missing or unknown:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
            [f"unexpected {', '.join(repr(k)[:40] for k in unknown[:5])}"] if unknown else [])
        raise MalformedInput(f"{what} must have exactly the fields {sorted(required)}: {'; '.join(parts)}")
    return value


def text(value: Mapping[str, Any] | Any, key: str, what: str, *, empty: bool = False) -> str:
    item = value.get(key) if isinstance(value, Mapping) else value
    if not isinstance(item, str) or (not empty and not item):
        raise MalformedInput(f"{what} {key} must be {'text' if empty else 'non-empty text'}, got {item!r:.60}")
    return item


def optional_text(value: Mapping[str, Any], key: str, what: str) -> str | None:
    item = value.get(key)
    if item is None:
        return None
    return text(value, key, what)


def count(value: Mapping[str, Any], key: str, what: str) -> int:
    item = value.get(key)
    if not isinstance(item, int) or isinstance(item, bool) or item < 0:
        raise MalformedInput(f"{what} {key} must be a non-negative integer, got {item!r:.60}")
    return item


def hex64(value: Any, what: str) -> bytes:
    """A SHA-256 value written as 64 lower-case hex characters."""
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise MalformedInput(f"{what} must be 64 lower-case hex characters, got {value!r:.80}")
    return bytes.fromhex(value)


def listed(value: Mapping[str, Any], key: str, what: str) -> list[Any]:
    item = value.get(key)
    if not isinstance(item, list):
        raise MalformedInput(f"{what} {key} must be a list, got {type(item).__name__}")
    return item


def hex64_list(value: Mapping[str, Any], key: str, what: str) -> tuple[bytes, ...]:
    """A list of SHA-256 values (a proof), each 64 lower-case hex characters."""
    return tuple(hex64(h, f"{what} {key}[{i}]") for i, h in enumerate(listed(value, key, what)))
