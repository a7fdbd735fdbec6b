"""LaTeX in paper text made plain Unicode (pylatexenc): what every reader's title and abstract
go through, so that `Sch{\\"o}lkopf`, `\\emph{x}`, `$x^2$` or `\\ie` are never shown raw.

`latex_to_text` decodes a BibTeX field, always. `plain_text` decodes other text (JSON,
arXiv, CSV, Daily Papers) only when it looks like LaTeX (a macro such as `\\emph`, `\\(`,
or a `$...$` pair), so an abstract that merely mentions "$5" or "{a, b}" stays as it is.
It does not collapse whitespace or remove invisible characters (`rag.formats.records`).
"""

from __future__ import annotations

import re

from pylatexenc.latex2text import LatexNodes2Text, MacroTextSpec, get_default_latex_context_db

# Abbreviation macros that papers define for themselves (`\ie`, `\eg`, usually with \xspace):
# unknown to pylatexenc, which would drop them, so they are spelled out before parsing.
_ABBREVIATIONS = {"ie": "i.e.", "eg": "e.g.", "etal": "et al.", "cf": "cf.", "etc": "etc.", "wrt": "w.r.t.",
                  "vs": "vs.", "aka": "a.k.a.", "iid": "i.i.d."}
_ABBREVIATION = re.compile(r"\\(" + "|".join(_ABBREVIATIONS) + r")(?![A-Za-z])\.?(\{\})?")
# Mendeley writes "~" and "^" as accents on nothing (`{\~{}}`), which decode to nothing.
_EMPTY_ACCENT = re.compile(r"\\([~^])\{\}")
_CONTEXT = get_default_latex_context_db()
_CONTEXT.add_context_category("rag-text", prepend=True, macros=[
    MacroTextSpec("textasciicircum", "^"), MacroTextSpec("textbraceleft", "{"), MacroTextSpec("textbraceright", "}"),
    MacroTextSpec("cite", ""), MacroTextSpec("citep", ""),
    MacroTextSpec("citet", ""), MacroTextSpec("url", "%s"),
    *(MacroTextSpec(m, "") for m in ("it", "em", "bf", "rm", "sf", "tt", "sc", "sl", "up", "md", "normalfont"))])
# A macro a paper defined for itself (`\overfeat`) keeps its name as the word it stands for,
# rather than vanishing from the sentence.
_CONTEXT.set_unknown_macro_spec(MacroTextSpec("", simplify_repl=lambda node, *_: node.macroname
                                              + (" " if node.macro_post_space else "")))
_LATEX = LatexNodes2Text(latex_context=_CONTEXT, math_mode="text", strict_latex_spaces=True)
# What is left of LaTeX after one decoding: Mendeley escapes a LaTeX abstract's own macros
# (`$\backslash$emph{\{}x{\}}`), so the first pass yields `\emph{x}` and a second is needed.
_STILL_LATEX = re.compile(r"\\[A-Za-z]{2,}")
# A bare % is text in a reference manager's abstract, but a comment to LaTeX that would drop
# the rest of the field, and a bare & or # would be dropped: escape them first. (Zotero writes
# \%, JabRef keeps what was typed.)
_BARE_PERCENT = re.compile(r"(?<!\\)([%&#])")

# Limits first: a field longer than this is never decoded. No abstract that decodes to the
# 20,000 characters `rag.formats.records` allows is written in twice that much LaTeX, so the
# field is refused by its length anyway; decoding it first cost pylatexenc seconds per
# 100,000 characters (20 s for a 1 MB field, 301 s for 4 MB), before the refusal.
MAX_LATEX_CHARS = 40_000
# Markup that only pylatexenc can decode. Text with dashes and ties but none of this (most
# titles and abstracts) is decoded by three replacements, exactly as pylatexenc would.
_MARKUP = re.compile(r"[\\{}$%&#^_`]|''")

_LOOKS_LATEX = re.compile(r"\\[A-Za-z]{2,}|\\[(\[]|\$[^$\s][^$]{0,200}\$|\{\\")


def latex_to_text(value: str) -> str:
    """Plain text of a LaTeX field value.

    `latex_to_text(r"Sch{\\"o}lkopf -- \\emph{kernel} 95\\% \\& $\\alpha$")`
    -> `"Schölkopf – kernel 95% & α"`.
    """
    if "\\" not in value and "{" not in value and "$" not in value and "-" not in value and "~" not in value:
        return value
    if len(value) > MAX_LATEX_CHARS:
        return value  # refused by its length (`rag.formats.records`), never decoded
    if not _MARKUP.search(value):
        return value.replace("---", "\u2014").replace("--", "\u2013").replace("~", "\xa0")
    text = value
    for _ in range(2):
        text = _ABBREVIATION.sub(lambda m: _ABBREVIATIONS[m.group(1)], text)
        text = _EMPTY_ACCENT.sub(lambda m: r"{\textasciitilde}" if m.group(1) == "~" else r"{\textasciicircum}", text)
        try:
            text = _LATEX.latex_to_text(_BARE_PERCENT.sub(r"\\\1", text))
        except Exception:  # pylatexenc is lenient; on anything it cannot take, keep the text readable
            return text.replace("{", "").replace("}", "")
        if not _STILL_LATEX.search(text):
            break
    return text


def plain_text(text: str) -> str:
    """`text` with its LaTeX decoded when it looks like LaTeX, else unchanged:
    `plain_text(r"the \\overfeat network (\\ie a CNN) with $O(n^2)$")` ->
    `"the overfeat network (i.e. a CNN) with O(n^2)"`; `plain_text("costs $5 {or} less")` is unchanged."""
    return latex_to_text(text) if _LOOKS_LATEX.search(text) else text
