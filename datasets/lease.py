"""Version claims and writer leases: how many writers on one dataset name each get their own version.

A writer claims version N by creating `<ns>/<name>/.claim-vN.json` exclusively (`O_EXCL` locally, a conditional
PUT on object stores): of two writers that chose the same N, one wins and the other moves on to N+1, so no two
writers ever share a staging folder. The claim is also the writer's lease: it names the host, pid and start time
and carries a heartbeat that a background thread refreshes every `HEARTBEAT_S` seconds while the version is being
written. A staging version whose claim is held by a live writer is left alone (listed as "being written by
host:pid since T", `rm` refuses it without `--force`); one whose writer is gone (same host and the pid is dead, or
no heartbeat for `STALE_S` seconds, or no claim at all: written before claims existed) is stale and may be
resumed or removed. Claims stay after commit (they reserve the number) and go with the version on `rm`.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from crl.datasets.manifest import now_iso

if TYPE_CHECKING:
    from crl.datasets.location import Location

HEARTBEAT_S = 10.0
"""How often a writer refreshes its lease."""
STALE_S = float(os.environ.get("CRL_LEASE_STALE_S", 120.0))
"""A lease without a heartbeat for this long belongs to a writer that is gone (hosts' clocks may differ by less)."""

LIVE, OURS, STALE = "live", "ours", "stale"


def claim_rel(full_name: str, version: int) -> str:
    """Relative path of the claim (and lease) of `namespace/name` version N."""
    return f"{full_name}/.claim-v{version}.json"


def new_holder() -> dict[str, Any]:
    """A lease record for this process (a fresh token tells two claims of one process apart)."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "since": now_iso(), "token": uuid.uuid4().hex,
            "heartbeat": time.time()}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def lease_status(lease: dict[str, Any] | None, now: float | None = None) -> str:
    """`ours` (this process holds it), `live` (another writer is alive) or `stale` (the writer is gone)."""
    if not lease or "pid" not in lease:
        return STALE
    same_host = lease.get("host") == socket.gethostname()
    if same_host and lease["pid"] == os.getpid():
        return OURS
    if same_host and not _pid_alive(int(lease["pid"])):
        return STALE
    age = (time.time() if now is None else now) - float(lease.get("heartbeat", 0.0))
    return STALE if age > STALE_S else LIVE


def describe(lease: dict[str, Any] | None) -> str:
    """`host:pid since T (heartbeat 3 s ago)`, or why there is no holder."""
    if not lease or "pid" not in lease:
        return "no recorded writer"
    ago = max(0.0, time.time() - float(lease.get("heartbeat", 0.0)))
    return f"{lease.get('host')}:{lease['pid']} since {lease.get('since', '?')} (heartbeat {ago:.0f} s ago)"


class _Keeper:
    """One daemon thread per process refreshing the heartbeat of every lease this process holds."""

    def __init__(self) -> None:
        self._held: dict[tuple[str, str], tuple[Location, dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def hold(self, loc: Location, rel: str, lease: dict[str, Any]) -> None:
        with self._lock:
            self._held[(loc.url, rel)] = (loc, lease)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="crl-lease-heartbeat", daemon=True)
                self._thread.start()

    def release(self, loc: Location, rel: str) -> None:
        with self._lock:
            self._held.pop((loc.url, rel), None)

    def _run(self) -> None:
        while True:
            time.sleep(HEARTBEAT_S)
            with self._lock:
                items = list(self._held.items())
            for key, (loc, lease) in items:
                try:
                    current = loc.read_json(key[1])
                    if current.get("token") != lease["token"]:  # taken over (we were presumed gone): let go
                        self.release(loc, key[1])
                        continue
                    lease["heartbeat"] = time.time()
                    loc.write_json(key[1], lease)
                except Exception:  # noqa: BLE001 - a missed beat is retried; staleness needs many
                    continue


KEEPER = _Keeper()

