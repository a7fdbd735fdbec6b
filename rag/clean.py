"""Untrusted text made safe to index and show: one pure function, used by every reader.

Corpus files come from anywhere. A title with U+202E (right-to-left override) displays
`invoice\\u202egpj.exe` as "invoiceexe.jpg" and runs on into the rest of the answer line; a
title of zero-width spaces is an invisible card; two titles that differ by a zero-width space
look identical but would be two papers. This module does not escape Markdown or HTML (that is
the renderer's job) and does not collapse whitespace (`rag.formats.records.clean` does).
"""

from __future__ import annotations

import re
import unicodedata

# Every Cc (controls), Cf (format: bidi embeddings/overrides/isolates, LRM/RLM, ALM,
# zero-width space/joiners, word joiner, BOM, soft hyphen, invisible operators, tag
# characters) and Cs (lone surrogates, which JSON's "\\ud800" escapes produce and which
# cannot be encoded) code point of this Python's Unicode, except newline and tab, as ranges:
# a regex is one C pass, a per-character category check a Python loop over every abstract.
# (tests/test_formats_clean.py checks the ranges against unicodedata.)
_DROP = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"
    "\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ud800-\udfff\ufeff\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f]")


def clean_text(text: str) -> str:
    """`text` in NFC with every control, format and surrogate character removed, except
    newline and tab. Idempotent; never raises on any `str`.

    >>> clean_text("invoice\\u202egpj.exe")
    'invoicegpj.exe'
    >>> clean_text("Cafe\\u0301 deep\\u200blearning\\u00ad")
    'Café deeplearning'
    >>> clean_text("\\u200b\\u200b")
    ''
    """
    if text.isascii() and text.isprintable():
        return text  # the common case
    return unicodedata.normalize("NFC", _DROP.sub("", text))
