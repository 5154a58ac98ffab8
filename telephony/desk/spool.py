"""Call records on disk until the store has them: one journal file a process, appended to at every save.

A call record is saved at every turn, and a server that dies while the store is down must still find what the
caller said at its next start. Each snapshot is appended as one line to this process's journal; the journal is
emptied whenever every snapshot in it has been stored, and rewritten with only the newest snapshot of each call
when it grows large (the store has been down for a while). An append costs a few microseconds. A file replaced
by rename at every save cost about 340 µs of CPU on ext4, which starts writing a file back when it is renamed
over another (`auto_da_alloc`).

The process holds its journal locked (`flock`) for as long as it runs. At start-up, `adopt` reads the journals
nobody holds (their process died), and per-call files an older version left, takes the newest snapshot of
each call into this process's journal and deletes them. A line cut short by a crash is skipped.
"""

from __future__ import annotations

import fcntl
import itertools
import logging
import os
import secrets
import threading
from pathlib import Path

from telephony.calls.records import CallRecord

log = logging.getLogger(__name__)

COMPACT_BYTES = 16 * 1024 * 1024  # a journal this large is rewritten with only what is not stored yet
JOURNAL_GLOB = "journal-*.jsonl"
LEGACY_GLOB = "*.json"  # one file per call, as spooled before the journal
_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)


class Spool:
    """This process's journal of call-record snapshots not yet stored. Thread-safe: snapshots are written on
    the event loop and marked stored from the store's writer thread."""

    def __init__(self, folder: Path, *, compact_bytes: int = COMPACT_BYTES) -> None:
        self.folder = folder
        self.compact_bytes = compact_bytes
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = 0
        self._unstored: dict[str, tuple[int, str]] = {}  # call SID -> the version and text of its newest snapshot
        self._versions = itertools.count(1)

    @property
    def path(self) -> Path | None:
        """This process's journal, once it has written one."""
        return self._path

    def write(self, call_sid: str, text: str) -> int:
        """Append the call's snapshot (JSON on one line); the version to hand to `stored` once it is stored.
        A disk that fails is logged: the snapshot is still queued in memory."""
        with self._lock:
            version = next(self._versions)
            self._unstored[call_sid] = (version, text)
            try:
                self._append(text)
                if self._size > self.compact_bytes:
                    self._compact()
            except OSError as exc:
                log.error("could not spool call %s: %s", call_sid, exc)
            return version

    def stored(self, call_sid: str, version: int) -> None:
        """The snapshot `version` of the call is in the store: the journal empties once nothing else waits."""
        with self._lock:
            newest = self._unstored.get(call_sid)
            if newest is None or newest[0] != version:
                return  # a newer snapshot was spooled meanwhile: it still waits
            del self._unstored[call_sid]
            if not self._unstored and self._fd is not None and self._size:
                try:
                    os.ftruncate(self._fd, 0)
                    self._size = 0
                except OSError as exc:
                    log.error("could not empty the spool journal %s: %s", self._path, exc)

    def adopt(self) -> list[CallRecord]:
        """Records that processes no longer running spooled and never stored, the newest of each call: taken
        into this journal (so a crash now loses none of them) and their old files deleted."""
        found: dict[str, tuple[str, CallRecord]] = {}
        taken: list[Path] = []
        for path in sorted(self.folder.glob(LEGACY_GLOB)):
            text = (_read(path) or "").strip()
            record = _record(text, path) if text else None
            if record is not None:
                found[record.call_sid] = (text, record)
                taken.append(path)
        for path in sorted(self.folder.glob(JOURNAL_GLOB), key=_modified):
            if path == self._path:
                continue
            lines = _read_unheld(path)
            if lines is None:
                continue
            whole = True
            for number, line in enumerate(lines, 1):
                record = _record(line, path, torn_ok=number == len(lines))
                if record is not None:
                    found[record.call_sid] = (line, record)
                else:
                    whole = whole and number == len(lines)
            if whole:
                taken.append(path)
        for sid, (text, _) in found.items():
            self.write(sid, text)
        for path in taken:
            try:
                path.unlink()
            except OSError as exc:
                log.error("could not delete the spooled records in %s: %s", path, exc)
        return [record for _, record in found.values()]

    def close(self) -> None:
        """Let the journal go (its records stay on disk for the next start if any is not stored)."""
        with self._lock:
            if self._fd is not None:
                fd, self._fd = self._fd, None
                os.close(fd)
                if self._size == 0 and self._path is not None:
                    self._path.unlink(missing_ok=True)

    # --- the file ------------------------------------------------------------------------------------------

    def _append(self, text: str) -> None:
        fd = self._fd if self._fd is not None else self._open()
        data = memoryview((text + "\n").encode())
        self._size += len(data)
        while data:
            data = data[os.write(fd, data) :]

    def _open(self) -> int:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"journal-{os.getpid()}-{secrets.token_hex(4)}.jsonl"
        fd = os.open(path, _OPEN_FLAGS, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # ours while we run: no starting process adopts it
        except OSError:
            os.close(fd)
            raise
        self._fd, self._path, self._size = fd, path, 0
        return fd

    def _compact(self) -> None:
        """A new journal with only the newest unstored snapshot of each call, then the old one deleted. If the new
        one cannot be written whole, the old one stays on disk (unlocked, for the next start)."""
        old_fd, old_path = self._fd, self._path
        self._fd = self._path = None
        try:
            self._open()
            for _, text in self._unstored.values():
                self._append(text)
        finally:
            if old_fd is not None:
                os.close(old_fd)
        if old_path is not None:
            old_path.unlink(missing_ok=True)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        log.error("could not read the spooled call record %s: %s (left in place)", path, exc)
        return None


def _read_unheld(path: Path) -> list[str] | None:
    """The lines of a journal no running process holds; None when one does (or it cannot be read)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        log.error("could not open the spool journal %s: %s", path, exc)
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return None  # its process is running: its records are its own
        with os.fdopen(os.dup(fd), "rb") as journal:
            data = journal.read()
    except OSError as exc:
        log.error("could not read the spool journal %s: %s", path, exc)
        return None
    finally:
        os.close(fd)
    return [line for line in data.decode("utf-8", errors="replace").split("\n") if line.strip()]


def _record(text: str, path: Path, *, torn_ok: bool = False) -> CallRecord | None:
    """The record in one spooled snapshot; None (logged) when it is not one. The last line of a journal may
    have been cut short by the crash that left it: that one is only noted."""
    try:
        return CallRecord.model_validate_json(text)
    except ValueError as exc:
        if torn_ok:
            log.warning("the last record spooled in %s is incomplete (cut short by a crash?); skipped", path)
        else:
            log.error("could not read a spooled call record in %s: %s (left in place)", path, exc)
        return None


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
