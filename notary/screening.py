"""Screening of free text for personal data in clear: resident identity numbers (GB 11643), mobile and
landline phone numbers, and unified social credit codes (GB 32100). Such values belong in the hub's
store, and in evidence only as salted commitments; a free-text field that carries one is refused with
an error naming what it looks like. Text is normalised first (NFKC folds full-width digits and letters;
spaces, dashes, dots and brackets between digits, and invisible format characters anywhere, are dropped),
so spelling a number out in pieces, in full-width characters or with zero-width ones does not slip it through.

A number can also be spread over several fields (or list items) of one body, each piece harmless alone:
`across` finds those. Its rule, chosen for few false alarms: the pieces are whole runs of digits and capital
letters at the *edges* of texts (the end of one text, the start of the next, or a text that is nothing
else), at most four texts, and joined they must be exactly one number of a screened kind, not merely
contain one (a resident identity number or a credit code also with its check character right, as every
real one has). So dates, amounts, room and lot numbers in separate fields pass: their pieces either do not
sit at the edges of their texts or do not join into exactly such a number.
"""

import contextlib
import contextvars
import functools
import re
import types
import unicodedata
from collections.abc import Iterable, Iterator
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, model_validator

_BETWEEN_DIGITS = re.compile(r"(?<=\d)[\s\-‐‑‒–—―−.·•_/()]+(?=\d)")
_RESIDENT_ID = re.compile(
    r"(?<![0-9A-Z])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[0-9X](?![0-9A-Z])"
)
# Numbers glued to Latin letters are identifiers (file names, time stamps like T064312123456), not
# phone numbers; a number after Chinese text or punctuation is screened.
_OLD_RESIDENT_ID = re.compile(r"(?<![0-9A-Z])[1-9]\d{5}\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}(?![0-9A-Z])")
_MOBILE = re.compile(r"(?<![0-9A-Z])(?:\+?86|0086)?1[3-9]\d{9}(?![0-9A-Z])")
_LANDLINE = re.compile(r"(?<![0-9A-Z])0[1-9]\d{1,2}\d{7,8}(?![0-9A-Z])")
_CREDIT_CODE = re.compile(r"(?<![0-9A-Z])[1-9ANY][1-9A-HJ-NP-RT-UW-Y]\d{6}[0-9A-HJ-NP-RT-UW-Y]{10}(?![0-9A-Z])")

_KINDS = (
    (_RESIDENT_ID, "a resident identity number"),
    (_CREDIT_CODE, "a unified social credit code"),
    (_OLD_RESIDENT_ID, "a resident identity number (15 digits)"),
    (_MOBILE, "a mobile phone number"),
    (_LANDLINE, "a landline phone number"),
)


# Invisible format characters (zero-width space and joiners, word joiner, soft hyphen, BOM, bidi marks:
# Unicode category Cf) render as nothing, so a number split by them reads as one number. They all lie in
# the first two planes and in the tags block; a table of them lets `str.translate` drop them at C speed.
_INVISIBLE = {cp: None for block in (range(0x20000), range(0xE0000, 0xE1000))
              for cp in block if unicodedata.category(chr(cp)) == "Cf"}


def _normalised(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text.translate(_INVISIBLE)).upper()
    return _BETWEEN_DIGITS.sub("", folded)


def personal_data_in(text: str) -> str | None:
    """What kind of personal data `text` carries in clear, or None."""
    joined = _normalised(text)
    for pattern, kind in _KINDS:
        if pattern.search(joined):
            return kind
    return None


def screened(text: str) -> str:
    """A pydantic after-validator: the text itself, or a ValueError naming what it carries."""
    kind = personal_data_in(text)
    if kind is not None:
        raise ValueError(f"free text must not carry personal data in clear; this looks like {kind} "
                         "(record it in the hub, and in evidence only as a commitment)")
    return text


# ----- numbers spread over several fields of one body -----

_SEPARATORS = r"[\s\-‐‑‒–—―−.·•_/()]*"
_HEAD = re.compile(rf"{_SEPARATORS}([0-9A-Z]+)")
_TAIL = re.compile(rf"([0-9A-Z]+){_SEPARATORS}$")
_WHOLE = re.compile(rf"{_SEPARATORS}([0-9A-Z]+){_SEPARATORS}")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CREDIT_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
MAX_PIECES = 4  # texts one number may be spread over
_ALL_PAIRS_UP_TO = 64  # texts with a number at an edge; beyond that only neighbours are paired


def _resident_id_checks(number: str) -> bool:
    """GB 11643: the 18th character is the check of the first 17."""
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    return "10X98765432"[total % 11] == number[17]


def _credit_code_checks(code: str) -> bool:
    """GB 32100: the 18th character is the check of the first 17 (base 31)."""
    total = sum(_CREDIT_CHARS.index(c) * w for c, w in zip(code[:17], _CREDIT_WEIGHTS, strict=True))
    return _CREDIT_CHARS[(31 - total % 31) % 31] == code[17]


_WHOLE_KINDS = (
    (re.compile(_RESIDENT_ID.pattern[len("(?<![0-9A-Z])"):-len("(?![0-9A-Z])")]), _resident_id_checks,
     "a resident identity number"),
    (re.compile(_CREDIT_CODE.pattern[len("(?<![0-9A-Z])"):-len("(?![0-9A-Z])")]), _credit_code_checks,
     "a unified social credit code"),
    (re.compile(_OLD_RESIDENT_ID.pattern[len("(?<![0-9A-Z])"):-len("(?![0-9A-Z])")]), None,
     "a resident identity number (15 digits)"),
    (re.compile(r"(?:86)?1[3-9]\d{9}"), None, "a mobile phone number"),
    (re.compile(r"0[1-9]\d{1,2}\d{7,8}"), None, "a landline phone number"),
)


def _whole_number(candidate: str) -> str | None:
    if not 10 <= len(candidate) <= 18 or not any(c.isdigit() for c in candidate):
        return None
    for pattern, check, kind in _WHOLE_KINDS:
        if pattern.fullmatch(candidate) and (check is None or check(candidate)):
            return kind
    return None


_EDGE_SKIP = " \t\r\n-‐‑‒–—―−.·•_/()"


def _may_have_edges(text: str) -> bool:
    """Cheaply: whether the text starts or ends (past separators) with what folds to a digit or a Latin letter."""
    for c in (text.lstrip(_EDGE_SKIP)[:1], text.rstrip(_EDGE_SKIP)[-1:]):
        if c and ((c.isascii() and c.isalnum()) or (not c.isascii() and (unicodedata.category(c) == "Cf" or
                                                                     (unicodedata.normalize("NFKC", c).isalnum()
                                                                     and unicodedata.normalize("NFKC", c).isascii())))):
            return True
    return False


class _Edges:
    __slots__ = ("head", "path", "tail", "whole")

    def __init__(self, path: str, text: str) -> None:
        n = _normalised(text)
        head, tail, whole = _HEAD.match(n), _TAIL.search(n), _WHOLE.fullmatch(n)
        self.path = path
        self.head = head.group(1) if head else None
        self.tail = tail.group(1) if tail else None
        self.whole = whole.group(1) if whole else None


def across(texts: Iterable[tuple[str, str]]) -> tuple[str, list[str]] | None:
    """A number of a screened kind spread over several of `texts` ((path, text) in body order): its kind and
    the paths of the texts that carry its pieces, or None. See the module's docstring for the rule."""
    edges = [e for e in (_Edges(path, text) for path, text in texts if _may_have_edges(text)) if e.head or e.tail]
    # Neighbours in body order, through texts that are nothing but one piece.
    for i, first in enumerate(edges):
        if not first.tail:
            continue
        joined, paths = first.tail, [first.path]
        for nxt in edges[i + 1:i + MAX_PIECES]:
            if not nxt.head:
                break
            kind = _whole_number(joined + nxt.head)
            if kind:
                return kind, [*paths, nxt.path]
            if not nxt.whole or len(joined) >= 18:
                break
            joined, paths = joined + nxt.whole, [*paths, nxt.path]
    # Two texts in either order, wherever they are in the body (a reader may put them together any way).
    if len(edges) <= _ALL_PAIRS_UP_TO:
        for first in edges:
            for second in edges:
                if first is not second and first.tail and second.head:
                    kind = _whole_number(first.tail + second.head)
                    if kind:
                        return kind, [first.path, second.path]
    return None


def _screened_annotation(metadata: Iterable[Any]) -> bool:
    return any(getattr(m, "func", None) is screened for m in metadata)


def _bare(annotation: Any, metadata: list[Any]) -> tuple[Any, list[Any]]:
    """The annotation without Annotated and an optional None, and the metadata gathered on the way."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation, *extra = get_args(annotation)
            metadata = [*metadata, *extra]
        elif origin is Union or origin is types.UnionType:
            args = [a for a in get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation, metadata
            annotation = args[0]
        else:
            return annotation, metadata


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _field_kind(annotation: Any, metadata: list[Any]) -> str | None:
    """How a field's value holds screened text: "text", "texts" (a list of them), "model", "models", "any"
    (walk it generally), or None (it cannot hold any)."""
    bare, metadata = _bare(annotation, metadata)
    if bare is str:
        return "text" if _screened_annotation(metadata) else None
    if _is_model(bare):
        return "model"
    if get_origin(bare) in (list, tuple):
        args = get_args(bare)
        inner, inner_meta = _bare(args[0], []) if args else (Any, [])
        if inner is str:
            return "texts" if _screened_annotation(inner_meta) else None
        if _is_model(inner):
            return "models"
        return "any" if inner is Any or get_origin(inner) is not None else None
    if bare in (int, float, bool, bytes) or get_origin(bare) is Literal:
        return None
    return "any"


@functools.cache
def _plan(model: type[BaseModel]) -> list[tuple[str, str, Any, list[Any]]]:
    plan = []
    for name, info in model.model_fields.items():
        kind = _field_kind(info.annotation, list(info.metadata))
        if kind is not None:
            plan.append((name, kind, info.annotation, list(info.metadata)))
    return plan


def _texts(annotation: Any, metadata: list[Any], value: Any, path: tuple[str | int, ...]) -> Iterator[tuple[str, str]]:
    """The general walk, for fields whose shape `_field_kind` does not name."""
    if value is None:
        return
    if isinstance(value, BaseModel):
        yield from screened_texts(value, path)
        return
    bare, metadata = _bare(annotation, metadata)
    if isinstance(value, str):
        if _screened_annotation(metadata):
            yield ".".join(str(p) for p in path), value
    elif isinstance(value, list | tuple):
        args = get_args(bare)
        for i, item in enumerate(value):
            yield from _texts(args[0] if args else Any, [], item, (*path, i))
    elif isinstance(value, dict):
        args = get_args(bare)
        for key, item in value.items():
            yield from _texts(args[1] if len(args) == 2 else Any, [], item, (*path, key))


def _dotted(path: tuple[str | int, ...]) -> str:
    return ".".join(str(p) for p in path)


def screened_texts(model: BaseModel, prefix: tuple[str | int, ...] = ()) -> Iterator[tuple[str, str]]:
    """The screened free-text strings of a validated model, nested ones included: (dotted path, text)."""
    for name, kind, annotation, metadata in _plan(type(model)):
        value = getattr(model, name)
        if value is None:
            continue
        path = (*prefix, name)
        if kind == "text":
            yield _dotted(path), value
        elif kind == "texts":
            base = _dotted(path)
            for i, text in enumerate(value):
                yield f"{base}.{i}", text
        elif kind == "model":
            yield from screened_texts(value, path)
        elif kind == "models":
            for i, item in enumerate(value):
                yield from screened_texts(item, (*path, i))
        else:
            yield from _texts(annotation, metadata, value, path)


def split_message(kind: str, paths: list[str], prefix: str = "") -> str:
    where = " + ".join(f"{prefix}{p}" for p in paths)
    return (f"free text must not carry personal data in clear, not even in pieces: {where} together look like "
            f"{kind} (record it in the hub, and in evidence only as a commitment)")


_depth: contextvars.ContextVar[int] = contextvars.ContextVar("screening_depth", default=0)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Validate without the across-fields check of `ScreenedAcross` models: the caller makes it itself, over
    a wider body and naming fields by their full paths (the notary's records: payload and attachments)."""
    token = _depth.set(_depth.get() + 1)
    try:
        yield
    finally:
        _depth.reset(token)


class ScreenedAcross(BaseModel):
    """A body whose screened free-text fields are also screened together (`across`), once, by the outermost
    model of a validation (nested models are part of its walk): a 422 names the fields."""

    @model_validator(mode="wrap")
    @classmethod
    def _no_number_across_fields(cls, data: Any, handler: Any) -> Any:
        depth = _depth.get()
        token = _depth.set(depth + 1)
        try:
            model = handler(data)
        finally:
            _depth.reset(token)
        if depth == 0:
            found = across(screened_texts(model))
            if found is not None:
                raise ValueError(split_message(*found))
        return model
