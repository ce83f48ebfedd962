"""Owner ids of leases, write intents and tombstones, and what can be known about them
without a store.

An owner id is ``uuid@host:pid``: one random uuid per process (a new one after a fork),
so two processes never share an id even when a pid is reused or two hosts have the same
name. Whether an owner on *another* host is alive is only known from its heartbeats in the
store (:meth:`vecver.store.base.ManifestStore.owner_alive`); on this host a pid that no
longer exists (or is a zombie) is known dead at once.

Ids written by older versions (``host:pid``, no uuid) are still understood.
"""

from __future__ import annotations

import getpass
import os
import socket
import uuid
from dataclasses import dataclass

_PROCESS_UUID = uuid.uuid4().hex


def _new_process_uuid() -> None:
    global _PROCESS_UUID
    _PROCESS_UUID = uuid.uuid4().hex


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_process_uuid)


def host() -> str:
    """This host's name, as it appears in owner ids."""
    return socket.gethostname()


def owner_id() -> str:
    """``uuid@host:pid`` of this process: the owner of its leases, intents, tombstones and
    work items. Stable for the life of the process (a forked child gets its own)."""
    return f"{_PROCESS_UUID}@{host()}:{os.getpid()}"


def actor() -> str:
    """``user@host:pid``: who an event in the log was recorded by."""
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        user = "unknown"
    return f"{user}@{host()}:{os.getpid()}"


@dataclass(frozen=True)
class Owner:
    """A parsed owner id. ``uuid`` is None for an id of an older version (``host:pid``);
    ``pid`` is None when the id does not end in a number."""

    uuid: str | None
    host: str
    pid: int | None


def parse_owner(owner: str) -> Owner:
    """Split an owner id into its parts (never raises; a malformed id has ``pid`` None)."""
    rest = owner
    ident: str | None = None
    if "@" in owner:
        ident, _, rest = owner.partition("@")
    host_part, _, pid_s = rest.rpartition(":")
    try:
        pid: int | None = int(pid_s)
    except ValueError:
        pid = None
    return Owner(ident, host_part, pid)


def local_pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host exists and is not a zombie."""
    if pid == os.getpid():
        return True
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (killed child not yet reaped) counts as dead
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True


def local_verdict(owner: str) -> bool | None:
    """What this host alone can tell about ``owner``: False when it is a process of this
    host that is gone (or a malformed id), True when it is this process or a live process
    of this host with the same uuid generation, None when it cannot tell (another host).

    A live pid of this host counts as alive even if the pid was reused: the verdict errs
    towards "alive", which delays a takeover but never lets two holders in."""
    me = owner_id()
    if owner == me:
        return True
    parsed = parse_owner(owner)
    if parsed.host != host():
        return None
    if parsed.pid is None:
        return False
    if parsed.pid == os.getpid():
        # our pid with another uuid: a previous process (pid reused) or our parent
        # before a fork; only a legacy id without uuid can be us
        return parsed.uuid is None
    return local_pid_alive(parsed.pid)


def owner_alive(owner: str) -> bool:
    """Whether ``owner`` may still be running, as far as this host can tell without a
    store: False only for a process of this host that is gone. Another host's owner is
    reported alive; use :meth:`vecver.store.base.ManifestStore.owner_alive`, which also
    reads heartbeats, to recover a dead writer of another host."""
    verdict = local_verdict(owner)
    return True if verdict is None else verdict
