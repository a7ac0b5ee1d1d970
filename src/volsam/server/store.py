"""The server's sessions: isolated, leased, limited in number, expired when idle.

Each open session has its own :class:`~volsam.Session`, its own lock (one request at a time changes it)
and a lease token that every request for it must show. Model runs also take a slot of their device's
semaphore, so that concurrent sessions share a GPU (or the CPU) without running more models at once than
``device_slots``. Engines come from :func:`volsam.engines.get`, which builds each (engine, model, device)
once: weights are loaded once and shared by all sessions.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from volsam.core.errors import Cancelled, LeaseRefused, ServerFull, SessionNotFound
from volsam.core.volume import Volume
from volsam.jobs.request import SegmentRequest
from volsam.server.preview import Preview

log = logging.getLogger(__name__)

MAX_EVENTS = 10_000  # progress events kept per session (older ones are dropped)

# the refusals (HTTP 404, 403, 503) live in volsam.core.errors, so that the client raises them too
__all__ = ["MAX_EVENTS", "Entry", "LeaseRefused", "ServerFull", "SessionNotFound", "SessionStore"]


@dataclass
class Entry:
    """One open session and what guards it."""

    id: str
    lease: str
    session: Any  # volsam.Session
    engine: str
    model: str | None
    device: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_used: float = field(default_factory=time.monotonic)
    events: list[dict] = field(default_factory=list)
    event_base: int = 0  # index of events[0] in the session's event sequence
    changed: threading.Condition = field(default_factory=threading.Condition)
    busy: bool = False  # a model run is in progress (``using``)
    stop: threading.Event = field(default_factory=threading.Event)  # set by ``cancel``, read at each frame
    # the running step's slice masks (GET .../preview); its own lock, never the session's
    preview: Preview = field(default_factory=Preview)

    def frame(self, index: int) -> None:
        """A slice was segmented: a ``frame`` event; then, if a stop was asked, :class:`Cancelled` (the session
        rolls the step back)."""
        self.emit({"type": "frame", "index": int(index)})
        if self.stop.is_set():
            raise Cancelled("stopped: the object is as it was before this step")

    def total(self, frames: int) -> None:
        """The most slices the running step may segment changed (the walk's extent, known better as it goes):
        a ``total`` event; the page's progress bar takes it as its maximum."""
        self.emit({"type": "total", "frames": int(frames)})

    def cancel(self) -> bool:
        """Ask the running model run to stop at its next slice; False when nothing is running."""
        if self.busy:
            self.stop.set()
        return self.busy

    def emit(self, event: dict) -> None:
        with self.changed:
            self.events.append(event)
            if len(self.events) > MAX_EVENTS:
                drop = len(self.events) - MAX_EVENTS
                del self.events[:drop]
                self.event_base += drop
            self.changed.notify_all()

    def events_after(self, seen: int) -> tuple[list[dict], int]:
        """Events numbered ``seen`` and later, and the next number to ask for."""
        with self.changed:
            start = max(seen - self.event_base, 0)
            return self.events[start:], self.event_base + len(self.events)


class SessionStore:
    """Open sessions by id.

    Args:
        max_sessions: more than this at once -> :class:`ServerFull`.
        idle_timeout_s: sessions unused this long are closed by :meth:`expire` (run on every request).
        device_slots: model runs at once per device.
        make_session: builds a Session from (volume, :class:`~volsam.jobs.request.SegmentRequest`) -- the real
            :class:`volsam.Session` unless a test swaps it.
        make_video: builds a video session from (:class:`~volsam.server.videos.VideoUpload`, request) -- the
            real :class:`~volsam.server.videos.VideoSession` unless a test swaps it.
    """

    def __init__(
        self,
        max_sessions: int,
        idle_timeout_s: float,
        device_slots: int = 1,
        make_session: Callable[..., Any] | None = None,
        make_video: Callable[..., Any] | None = None,
    ):
        self.max_sessions = max_sessions
        self.idle_timeout_s = idle_timeout_s
        self.device_slots = device_slots
        self._entries: dict[str, Entry] = {}
        self._lock = threading.Lock()
        self._devices: dict[str, threading.Semaphore] = {}
        self._make = make_session or _volsam_session
        self._make_video = make_video or _video_session

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def create(self, volume: Any, request: SegmentRequest, video: bool = False) -> Entry:
        """Open a session on ``volume`` (a Volume; with ``video``, a checked video upload) with the options of
        ``request``; raises :class:`ServerFull` at the limit (after expiring idle ones)."""
        engine, model, device = request.engine, request.model, request.device
        self.expire()
        with self._lock:
            if len(self._entries) >= self.max_sessions:
                raise ServerFull(f"the server holds its limit of {self.max_sessions} sessions; try again later")
            sid = secrets.token_urlsafe(12)
            placeholder = Entry(sid, secrets.token_urlsafe(24), None, engine, model, device)
            self._entries[sid] = placeholder  # reserve the slot while the engine loads
        try:
            with self.device_slot(device):
                placeholder.session = (self._make_video if video else self._make)(volume, request)
        except BaseException:
            with self._lock:
                self._entries.pop(sid, None)
            raise
        placeholder.session.on_frame = placeholder.frame
        placeholder.session.on_total = placeholder.total  # volume and video sessions report their steps' totals
        placeholder.session.on_preview = placeholder.preview.add  # a video's run is shown from disk instead
        log.info("session %s opened (%s, %s); %d open", sid, engine, device, len(self))
        return placeholder

    def get(self, sid: str, lease: str | None) -> Entry:
        """The session ``sid`` if ``lease`` is its token; marks it used."""
        self.expire()
        with self._lock:
            entry = self._entries.get(sid)
        if entry is None or entry.session is None:
            raise SessionNotFound(f"no open session {sid!r} (closed, expired after inactivity, or never created)")
        if lease is None or not hmac.compare_digest(lease.encode(), entry.lease.encode()):  # bytes: any header
            raise LeaseRefused("this session belongs to another client: send its lease token (X-Session-Lease)")
        entry.last_used = time.monotonic()
        return entry

    def close(self, sid: str, lease: str | None) -> None:
        entry = self.get(sid, lease)
        with entry.lock, self._lock:
            self._entries.pop(sid, None)
            _release(entry)
        entry.emit({"type": "closed"})
        log.info("session %s closed; %d open", sid, len(self))

    def expire(self) -> list[str]:
        """Close sessions idle longer than the timeout (not those busy right now); returns their ids."""
        now = time.monotonic()
        gone = []
        with self._lock:
            for sid, entry in list(self._entries.items()):
                idle = now - entry.last_used > self.idle_timeout_s
                if entry.session is not None and idle and entry.lock.acquire(blocking=False):
                    try:
                        del self._entries[sid]
                        _release(entry)
                        gone.append(sid)
                        entry.emit({"type": "closed", "reason": "idle"})
                    finally:
                        entry.lock.release()
        for sid in gone:
            log.info("session %s expired after %.0f s idle", sid, self.idle_timeout_s)
        return gone

    def close_all(self) -> None:
        with self._lock:
            for entry in self._entries.values():
                _release(entry)
            self._entries.clear()

    @contextmanager
    def device_slot(self, device: str) -> Iterator[None]:
        """Hold one of the device's model-run slots."""
        with self._lock:
            sem = self._devices.setdefault(device, threading.Semaphore(self.device_slots))
        with sem:
            yield

    @contextmanager
    def locked(self, entry: Entry) -> Iterator[Any]:
        """The entry's Session, locked (a session closed meanwhile raises :class:`SessionNotFound`)."""
        with entry.lock:
            if entry.session is None:
                raise SessionNotFound(f"session {entry.id!r} was closed")
            yield entry.session

    @contextmanager
    def using(self, entry: Entry) -> Iterator[Any]:
        """The entry's Session, locked, inside a device slot (a model run); emits ``busy`` (with ``slices``, the
        number of slices along the session's axis: the most a walk can segment) and ``idle`` (with ``stopped``
        when :meth:`Entry.cancel` stopped it). A stop asked before the run starts is forgotten. The run's
        preview (:attr:`Entry.preview`) starts empty with it and is emptied before ``idle``."""
        with self.locked(entry) as session:
            entry.stop.clear()
            entry.busy = True
            volume, axis = getattr(session, "volume", None), getattr(session, "axis", None)
            slices = int(volume.size[axis]) if volume is not None and axis is not None else None
            slices = getattr(session, "frame_count", slices)  # a video: its frames
            entry.preview.start()
            entry.emit({"type": "busy", "slices": slices})
            stopped = False
            try:
                with self.device_slot(entry.device):
                    yield session
            except Cancelled:
                stopped = True
                raise
            finally:
                entry.busy = False
                entry.preview.clear()  # the step's result (or, stopped, the state before it) is the label map
                entry.stop.clear()
                entry.last_used = time.monotonic()
                entry.emit({"type": "idle", "stopped": stopped})


def _release(entry: Entry) -> None:
    """Free a closed session's memory now: break the entry <-> session reference cycle (its progress hook)
    so that the arrays go with the last reference instead of waiting for the cycle collector, and hand
    freed heap pages back to the OS (glibc keeps them otherwise, and RSS would stay high)."""
    if entry.session is not None:
        entry.session.on_frame = None
        entry.session.on_total = None
        entry.session.on_preview = None
        close = getattr(entry.session, "close", None)  # a video session's folder (its upload and masks)
        if callable(close):
            close()
    entry.session = None
    _trim_heap()


def _trim_heap() -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl): nothing to do
        pass


def _volsam_session(volume: Volume, request: SegmentRequest) -> Any:
    return request.session(volume)


def _video_session(upload: Any, request: SegmentRequest) -> Any:
    from volsam.server.videos import VideoSession

    return VideoSession(upload, request)
