"""Generators for the documentation: `python -m docs.figures` (the README's table of quality
and speed figures) and `python -m docs.settings_doc` (docs/settings.md). Not shipped in the
wheel; run from the repository root."""
