"""The one error family of the assistant: every failure a user can act on is a `RagError`.

The edges (CLI, UI, eval) catch `RagError` and show its message as one line; anything else
is a bug and keeps its traceback. Each subclass names who can fix it:

- `QuestionError`: the question itself (empty, too long, binary); also a ValueError, so
  callers that validate input with `except ValueError` keep working;
- `StoreError`: the index (missing, damaged, unreadable, locked, full disk);
- `ConfigError`: a setting, an argument or an input file the user named.
"""

from __future__ import annotations


class RagError(Exception):
    """A failure the user can act on; the message says what happened and what to do, in one line."""


class QuestionError(RagError, ValueError):
    """The question cannot be answered as given."""


class StoreError(RagError):
    """The index cannot be opened, read or written as asked."""


class ConfigError(RagError):
    """A setting, command-line argument or input file is unusable."""
