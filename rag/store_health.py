"""Say what is actually wrong with a store that cannot be opened, read or written.

Chroma reports a read-only file, a full disk and a damaged database alike as an internal
error; answering every one of them with "damaged, run `rag ingest --rebuild`" sent users to
delete an intact index. `problem()` checks the directory itself (writable? space left?) and
`store_error()` turns a Chroma exception into a one-line StoreError that names the cause:
read-only, disk full, locked, a Chroma server that does not answer (unreachable: no rebuild
advice, the index on it is fine), or damaged, each with its own remedy.

An intact index that is merely read-only (a read-only mount, a file owned by someone else)
is still answered from: Chroma writes to its database even to open it, so readers open a
private copy (`private_copy`), which its owner removes (`discard_copy`: `rag.store.open_client`
ties it to the client it opens, so it goes when that client does, or at the latest at exit).
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

from rag.errors import StoreError

LOW_SPACE_BYTES = 1024 * 1024  # below this free space a write will fail: say so up front

REBUILD = "run `rag ingest --rebuild` to rebuild it from the corpus"
_PRIVATE_COPIES: dict[str, Path] = {}  # copy's path -> the read-only store it copies


def unwritable(store: Path) -> str | None:
    """Why `store` (the chroma directory) cannot be written, or None when it can."""
    probe = store if store.exists() else store.parent
    while not probe.exists():
        probe = probe.parent
    try:
        if os.statvfs(probe).f_flag & os.ST_RDONLY:
            return f"on a read-only file system ({probe})"
    except OSError:
        pass
    for path in (probe, probe / "chroma.sqlite3"):
        if path.exists() and not os.access(path, os.W_OK):
            return f"read-only ({path} is not writable by this user: check its permissions, owner or immutable flag)"
    return None


def disk_full(store: Path) -> bool:
    probe = store if store.exists() else store.parent
    while not probe.exists():
        probe = probe.parent
    try:
        return shutil.disk_usage(probe).free < LOW_SPACE_BYTES
    except OSError:
        return False


def no_room(store: Path, probe_bytes: int = 4 * 1024 * 1024) -> bool:
    """Whether writing `probe_bytes` beside the store fails for lack of space: the only sure
    test when Chroma's error does not say why ("Failed to apply logs to the metadata segment"
    on a full disk), since the failed write has given its space back by then."""
    target = store if store.is_dir() else store.parent
    probe = target / f".rag-space-probe-{os.getpid()}"
    try:
        with probe.open("wb") as fh:
            block = b"\0" * (1024 * 1024)
            for _ in range(probe_bytes // len(block)):
                fh.write(block)
            fh.flush()
            os.fsync(fh.fileno())
        return False
    except OSError as err:
        return err.errno in (errno.ENOSPC, errno.EDQUOT)
    finally:
        probe.unlink(missing_ok=True)


def is_disk_full(err: BaseException) -> bool:
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return True
    text = str(err).lower()
    return any(s in text for s in ("no space left", "disk is full", "database or disk is full", "code: 13)"))


# What the HTTP client of a Chroma server raises when the server is not there (httpx's names).
_NO_SERVER = {"ConnectError", "ConnectTimeout", "ReadTimeout", "WriteTimeout", "PoolTimeout", "ReadError",
              "WriteError", "RemoteProtocolError"}


def unreachable(err: BaseException) -> str | None:
    """What keeps a Chroma server from answering ("ConnectError: [Errno 111] Connection
    refused"), from `err` or the errors it was raised from, or None when it is not that."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, ConnectionError) or type(err).__name__ in _NO_SERVER:
            return f"{type(err).__name__}: {' '.join(str(err).split())[:160]}"
        err = err.__cause__ or err.__context__
    return None


def store_error(err: BaseException, where: str, store: Path | None = None) -> StoreError:
    """A StoreError naming what went wrong with the store at `where` (Chroma's exception `err`)."""
    if isinstance(err, StoreError):
        return err
    problem = unreachable(err) if store is None else None  # a server's store: no path on this host
    if problem:
        return StoreError(f"the store at {where} is unreachable ({problem}); start the Chroma server or check "
                          "RAG_CHROMA_HOST and RAG_CHROMA_PORT, then try again (nothing in the index is lost)")
    text = str(err).lower()
    opaque = any(s in text for s in ("compaction", "apply logs", "write", "i/o error"))
    if is_disk_full(err) or (store is not None and opaque and (disk_full(store) or no_room(store))):
        return StoreError(f"disk full: the store at {where} cannot be written; free some space and run the "
                          "command again (nothing committed is lost)")
    denied = isinstance(err, OSError) and err.errno in (errno.EROFS, errno.EACCES, errno.EPERM)
    if "readonly database" in text or "read-only" in text or denied:
        reason = (unwritable(store) if store is not None else None) or "read-only"
        return StoreError(f"the store at {where} is {reason}; make it writable or set RAG_DATA_DIR elsewhere")
    if "database is locked" in text or "database is busy" in text:
        return StoreError(f"the store at {where} is locked by another process; try again when it has finished")
    detail = " ".join(str(err).split())[:200]
    return StoreError(f"the store at {where} is damaged ({type(err).__name__}: {detail}); {REBUILD}")


def private_copy(store: Path) -> Path:
    """A private, writable copy of the read-only store at `store`; the caller removes it
    (`discard_copy`)."""
    target = Path(tempfile.mkdtemp(prefix="rag-readonly-")) / "chroma"
    try:
        shutil.copytree(store, target)
    except OSError as err:
        shutil.rmtree(target.parent, ignore_errors=True)
        why = "disk full" if is_disk_full(err) else (err.strerror or str(err))
        raise StoreError(f"the store at {store} is read-only and cannot be copied to answer from ({why}); "
                         "make it writable") from None
    _PRIVATE_COPIES[str(target)] = store
    return target


def discard_copy(target: Path) -> None:
    """Remove a `private_copy` (idempotent)."""
    _PRIVATE_COPIES.pop(str(target), None)
    shutil.rmtree(target.parent, ignore_errors=True)


def copied_from(path: str) -> Path | None:
    """The read-only store that the directory `path` is a private copy of, if it is one."""
    return _PRIVATE_COPIES.get(path)
