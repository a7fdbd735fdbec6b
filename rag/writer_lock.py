"""One writer at a time: the lock every `rag ingest` holds while it writes to a store.

Two ingests writing at once lose data: both resolve a title to the same free version id and
the second overwrites the first's paper, and the corpus source list is read, merged and
written back (a lost update). Serialising writers removes both races; readers never lock.

- Embedded store: an OS file lock (`filelock`) on `<data_dir>/ingest.lock`. The OS releases it
  when the holder dies, even on kill -9, so a crashed ingest never leaves the store locked.
- Chroma server: the server is the only thing writers share, so the lock lives there, as
  lease records in a small collection `rag-writers`. Chroma has no compare-and-swap, so a
  writer *announces* itself (a record with its start time), waits `SETTLE` seconds so that
  every writer announcing at about the same time is visible, and then the oldest live
  announcement wins (ties by id); everyone decides from the same records, so exactly one
  proceeds. The holder marks its record held and renews it every `LEASE / 3` seconds; a
  record not renewed for `LEASE` seconds (a writer that died) is ignored and removed.

A second writer prints "another ingest is writing to <where>; waiting" once and waits.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from filelock import FileLock, Timeout

from rag.errors import StoreError
from rag.settings import Settings

LEASE = 30.0  # seconds a server lease lives without renewal
SETTLE = 1.0  # seconds an announcement waits before deciding who holds the lock
POLL = 0.5
LOCK_COLLECTION = "rag-writers"


def _say(where: str) -> None:
    print(f"another ingest is writing to {where}; waiting", file=sys.stderr, flush=True)


@contextmanager
def writer_lock(settings: Settings, client=None, on_wait: Callable[[str], None] = _say) -> Iterator[None]:
    """Hold the store's writer lock for the body; waits (saying so once) while another holds it."""
    if settings.uses_server:
        with _server_lock(client, f"the Chroma server {settings.chroma_host}:{settings.chroma_port}", on_wait):
            yield
        return
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(settings.data_dir / "ingest.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        on_wait(str(settings.data_dir))
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


@contextmanager
def _server_lock(client, where: str, on_wait: Callable[[str], None]) -> Iterator[None]:
    if client is None:
        raise ValueError("a Chroma server lock needs the client")
    try:
        coll = client.get_or_create_collection(LOCK_COLLECTION, embedding_function=None)
    except Exception as err:
        raise StoreError(f"cannot take the writer lock on {where} ({type(err).__name__}: {err})") from None
    me = f"w-{uuid.uuid4().hex}"
    started = time.time()

    def announce(held: bool) -> None:
        meta = {"started": started, "renewed": time.time(), "held": held}
        coll.upsert(ids=[me], embeddings=[[0.0]], metadatas=[meta])

    announce(False)
    waited = False
    try:
        time.sleep(SETTLE)
        while True:
            rows = coll.get(include=["metadatas"])
            now = time.time()
            live = {rid: m for rid, m in zip(rows["ids"], rows["metadatas"]) if now - m["renewed"] < LEASE}
            dead = [rid for rid in rows["ids"] if rid not in live]
            if dead:
                coll.delete(ids=dead)
            held = [rid for rid, m in live.items() if m["held"] and rid != me]
            first = min(live, key=lambda rid: (live[rid]["started"], rid)) if live else me
            if not held and first == me:
                break
            if not waited:
                on_wait(where)
                waited = True
            announce(False)  # stay live while waiting
            time.sleep(POLL)
        announce(True)
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(LEASE / 3):
                try:
                    announce(True)
                except Exception:  # a server hiccup: the next renewal may get through
                    pass

        beat = threading.Thread(target=renew, name="rag-writer-lease", daemon=True)
        beat.start()
        try:
            yield
        finally:
            stop.set()
            beat.join()
    finally:
        try:
            coll.delete(ids=[me])
        except Exception:  # the lease expires by itself
            pass
