"""A user's own files in the index: add one (read whole and checked before anything is
written), list the sources with their paper counts, remove one.

`add_file` is what the UI's upload runs: the file is copied into `data_dir/uploads/` (never
into a directory a web server serves), parsed completely, and refused with the reason when it
yields no paper or is damaged (a bad gzip, a truncated file): a refused file changes nothing
in the index. A file that parses is ingested like `rag ingest FILE` under the writer lock, so
its papers are new, updated or unchanged by the same rules, and open indexes see them at
their next question. A source is a file name, as `rag stats` lists it: adding `my.bib` again
replaces what `my.bib` added (papers the new version lacks are removed).

Where each source's file lives is kept beside the index (`rag.source_paths`), so `rag ingest
--rebuild` re-reads every source the index records, uploads included.

What this module does not do: parse formats (`rag.formats`), decide what changed
(`rag.ingest`), or delete from the store itself (`rag.ingest.remove_source`).
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path

from rag.errors import ConfigError
from rag.formats import READERS, reader_for
from rag.settings import Settings

UPLOADS = "uploads"
_NAME = re.compile(r"^[\w][\w .,()+@-]*$")  # letters, digits and a few marks; no path, no leading dot


def upload_dir(settings: Settings) -> Path:
    """Where uploaded files are kept: `data_dir/uploads/`."""
    return settings.data_dir / UPLOADS


def supported_types() -> list[str]:
    """The file types an upload may have: `[".bib", ".csv", ..., ".bib.gz", ...]`."""
    plain = sorted(READERS)
    return plain + [s + ".gz" for s in plain]


def upload_types() -> list[str]:
    """The extensions a file picker accepts: each format's, and `.gz` (its inner type is
    checked by `checked_name`)."""
    return sorted(READERS) + [".gz"]


def checked_name(name: str) -> str:
    """The file name an upload is kept and listed under, or ConfigError: `"a/b/my.bib"` ->
    `"my.bib"`; a hidden or oddly named file, or an unsupported type, is refused."""
    base = Path(str(name).replace("\\", "/")).name.strip()
    if base.startswith("."):
        raise ConfigError(f"{base!r} is not a usable file name: it starts with a dot (a hidden file, or no "
                          "name before its type); rename it, e.g. papers.bib")
    if not base or not _NAME.match(base) or len(base) > 200:
        raise ConfigError(f"{base or name!r} is not a usable file name (letters, digits, spaces and .,()+@-_ only)")
    if reader_for(Path(base)) is None:
        raise ConfigError(f"{base}: not a paper file type; upload one of {', '.join(supported_types())}")
    return base


def check_papers(path: Path, max_bytes: int | None = None) -> tuple[int, list]:
    """(papers, skipped records: the first reasons kept, `rag.formats.base.SkipLog`) of a
    file read completely, or ConfigError when the file is unusable: no paper in it, or a
    problem with the whole file (damaged or truncated compression, not a file of its type).
    Streams: papers are counted, never held, so the check costs the memory of one record.
    `max_bytes`: the most the file may hold decompressed (`PaperStream`). Writes nothing."""
    from rag.corpus import PaperStream

    stream = PaperStream([path], max_bytes=max_bytes)
    papers = sum(1 for _ in stream)
    whole = [s for s in stream.skipped if s.line == 0]
    if whole or not papers:
        reasons = "; ".join(str(s) for s in (whole or stream.skipped)[:3]) or f"{path.name}: no records found"
        more = (len(whole) if whole else stream.skipped.total) - 3
        raise ConfigError(f"refused {path.name}, nothing was indexed: {reasons}"
                          + (f" (and {more} more)" if more > 0 else ""))
    return papers, [s for s in stream.skipped if s.line > 0]


def add_file(settings: Settings, path: Path, name: str | None = None, embedder=None, progress: bool = False):
    """Check the file at `path` (as `name`, default its own) and ingest it; returns the
    `IngestReport`. Raises ConfigError (refused: nothing indexed, nothing kept) or
    StoreError. `embedder`: the running app's, so nothing is loaded twice."""
    from rag.ingest import ingest
    from rag.store import Store, check_writable, open_client
    from rag.writer_lock import writer_lock

    name = checked_name(name or path.name)
    size = path.stat().st_size
    if size > settings.ui_max_upload_bytes:
        raise ConfigError(f"refused {name}: {size:,} bytes is over the upload limit of "
                          f"{settings.ui_max_upload_bytes:,} (RAG_UI_MAX_UPLOAD_BYTES)")
    check_writable(settings)
    # A staging directory of its own: two uploads of one name at once never share a path.
    staging = upload_dir(settings) / ".staging" / uuid.uuid4().hex
    staging.mkdir(parents=True)
    staged = staging / name
    try:
        shutil.copyfile(path, staged)
        check_papers(staged, settings.ui_max_upload_bytes)
        # The writer lock serialises uploads and removals (of any source): the file kept
        # and the papers indexed under its name are always the same upload's. (An embedded
        # store is opened under it too: two threads creating one store at once collide.)
        server = open_client(settings) if settings.uses_server else None
        with writer_lock(settings, server, on_wait=lambda _where: None):
            client = server or open_client(settings)
            final = upload_dir(settings) / name
            os.replace(staged, final)
            return ingest([final], settings, Store(client, settings.embed_model), embedder=embedder,
                          progress=progress, replace=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def list_sources(settings: Settings) -> dict[str, int]:
    """Source name -> papers, as the index records them ({} when there is no index yet)."""
    from rag.errors import StoreError
    from rag.store import Store, open_client

    try:
        return Store(open_client(settings, create=False), settings.embed_model, create=False).sources()
    except StoreError:
        return {}


def remove(settings: Settings, source: str) -> int:
    """Remove every paper of `source` from the index (Chroma and the lexical index alike, via
    `rag.ingest.remove_source`, under the writer lock) and its uploaded copy, if any; returns
    the papers removed. ConfigError when no source has that name."""
    from rag.ingest import remove_source
    from rag.store import check_writable, open_client
    from rag.writer_lock import writer_lock

    known = list_sources(settings)
    if source not in known:
        listed = ", ".join(sorted(known)) or "none"
        raise ConfigError(f"no source named {source!r} in the index (sources: {listed})")
    check_writable(settings)
    client = open_client(settings, create=False)
    with writer_lock(settings, client if settings.uses_server else None, on_wait=lambda _where: None):
        removed = remove_source(settings, source)
        (upload_dir(settings) / source).unlink(missing_ok=True)  # under the lock: never a newer upload's file
    return removed
