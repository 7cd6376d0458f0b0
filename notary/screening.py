"""Screening of free text for personal data in clear: resident identity numbers (GB 11643), mobile and
landline phone numbers, and unified social credit codes (GB 32100). Such values belong in the hub's
store, and in evidence only as salted commitments; a free-text field that carries one is refused with
an error naming what it looks like. Text is normalised first (NFKC folds full-width digits and letters;
spaces, dashes, dots and brackets between digits, and invisible format characters anywhere, are dropped),
so spelling a number out in pieces, in full-width characters or with zero-width ones does not slip it through.
"""

import re
import unicodedata

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


def personal_data_in(text: str) -> str | None:
    """What kind of personal data `text` carries in clear, or None."""
    # Invisible format characters (zero-width space and joiners, word joiner, soft hyphen, BOM, bidi
    # marks: Unicode category Cf) render as nothing, so a number split by them reads as one number.
    visible = "".join(c for c in text if unicodedata.category(c) != "Cf")
    folded = unicodedata.normalize("NFKC", visible).upper()
    joined = _BETWEEN_DIGITS.sub("", folded)
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
