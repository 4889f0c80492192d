"""pg_forget as an application calls it, with psycopg 3.

Every call is one short transaction on its own connection (connection
parameters from the libpq environment: PGHOST, PGPORT, PGDATABASE, PGUSER,
PGPASSWORD, or a conninfo string). A refused call raises ForgetError, built
from the server's SQLSTATE and the error's CONSTRAINT, DETAIL and HINT
fields, never from the wording of its message.

Listener keeps a connection of its own on LISTEN forget and hands every
action pg_forget completed (delete, anonymize, restore, ...) to callbacks,
as Event values.
"""

from __future__ import annotations

import collections
import datetime
import json
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

import psycopg
from psycopg.rows import dict_row


class ForgetError(Exception):
    """A call pg_forget refused, in the terms the application shows.

    status   the HTTP status that fits (404, 409, 410, 403, 400)
    kind     not_found | blocked | pending_deletion | recovery_window_expired
             | forbidden | bad_key
    reasons  for kind == "blocked": [{"rule": ..., "message": ...}], one per
             failing rule, from the error's DETAIL
    """

    def __init__(
        self,
        status: int,
        kind: str,
        message: str,
        *,
        sqlstate: str | None,
        constraint: str | None = None,
        detail: str | None = None,
        hint: str | None = None,
        reasons: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message
        self.sqlstate = sqlstate
        self.constraint = constraint
        self.detail = detail
        self.hint = hint
        self.reasons = reasons or []

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "error": self.kind,
            "message": self.message,
            "sqlstate": self.sqlstate,
            "constraint": self.constraint,
        }
        if self.kind == "blocked":
            body["rule"] = self.constraint
            body["reasons"] = self.reasons
            body["hint"] = self.hint
        return body


def reasons_from_detail(detail: str | None) -> list[dict[str, str]]:
    """DETAIL of a refusal by rules: one failing rule per line, `<rule>: <message>`."""
    reasons = []
    for line in (detail or "").splitlines():
        rule, sep, message = line.partition(": ")
        if sep:
            reasons.append({"rule": rule.strip(), "message": message.strip()})
        elif line.strip():
            reasons.append({"rule": None, "message": line.strip()})
    return reasons


def map_error(e: psycopg.Error) -> ForgetError | None:
    """The application's view of a server error, or None for one it does not expect."""
    diag = e.diag
    state = e.sqlstate
    constraint = diag.constraint_name
    message = diag.message_primary or str(e)
    common = dict(sqlstate=state, constraint=constraint, detail=diag.message_detail, hint=diag.message_hint)
    if state == "P0002":
        return ForgetError(404, "not_found", message, **common)
    if state == "55000":
        if constraint == "pending_deletion":
            # A second soft delete (or anonymize) while the recovery record of
            # the first is retained: restore it first, or delete for good.
            return ForgetError(409, "pending_deletion", message, **common)
        if constraint == "recovery_window":
            return ForgetError(410, "recovery_window_expired", message, **common)
        # Refused by rules: CONSTRAINT is the first failing rule, DETAIL has
        # every failing rule, HINT the eligibility call that shows them.
        return ForgetError(409, "blocked", message, reasons=reasons_from_detail(diag.message_detail), **common)
    if state == "42501":
        return ForgetError(403, "forbidden", message, **common)
    if state in ("22P02", "22004"):
        return ForgetError(400, "bad_key", message, **common)
    return None


class Forget:
    """The calls of the account portal, each in its own transaction."""

    def __init__(self, conninfo: str = "", **connect_kwargs: Any) -> None:
        self.conninfo = conninfo
        self.connect_kwargs = connect_kwargs

    def _query(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            with psycopg.connect(self.conninfo, row_factory=dict_row, **self.connect_kwargs) as conn:
                return conn.execute(sql, params).fetchall()  # commits when the block ends
        except psycopg.Error as e:
            mapped = map_error(e)
            if mapped is None:
                raise
            raise mapped from e

    def account_status(self, key: str) -> dict[str, Any]:
        """At login: active, and for an inactive account the message to show."""
        return self._query("SELECT * FROM forget.account_status(%(key)s)", {"key": key})[0]

    def eligibility(self, key: str, action: str = "delete") -> list[dict[str, Any]]:
        """One row per rule that applies to the action: rule, ok, blocking, message."""
        return self._query("SELECT * FROM forget.eligibility(%(key)s, %(action)s)", {"key": key, "action": action})

    def delete(self, key: str, *, reason: str | None, actor: str | None, grace: str | None = None) -> list[dict[str, Any]]:
        """delete_client; with grace (an interval such as '30 days') restorable until it ends."""
        return self._query(
            "SELECT tbl::text AS tbl, operation, rows FROM forget.delete_client("
            "%(key)s, reason => %(reason)s, actor => %(actor)s, grace => %(grace)s::interval)",
            {"key": key, "reason": reason, "actor": actor, "grace": grace},
        )

    def restore(self, key: str, *, actor: str | None) -> list[dict[str, Any]]:
        return self._query(
            "SELECT tbl::text AS tbl, operation, rows FROM forget.restore_client(%(key)s, actor => %(actor)s)",
            {"key": key, "actor": actor},
        )

    def export(self, key: str) -> dict[str, Any]:
        """Everything held about the client: {"subject", "key", "exported_at", "data"}."""
        return self._query("SELECT forget.export_client(%(key)s) AS export", {"key": key})[0]["export"]


@dataclass(frozen=True)
class Event:
    """One completed action, from the payload of NOTIFY forget."""

    action: str
    subject: str
    key: str
    audit_id: int | None
    at: datetime.datetime | None
    payload: dict[str, Any] = field(repr=False)

    @classmethod
    def parse(cls, payload: str) -> "Event":
        data = json.loads(payload)
        at = data.get("at")
        return cls(
            action=data["action"],
            subject=data["subject"],
            key=str(data["key"]),
            audit_id=data.get("audit_id"),
            # RFC 3339, e.g. 2026-11-30T16:20:00.123456+00:00
            at=datetime.datetime.fromisoformat(at) if at else None,
            payload=data,
        )


class Listener:
    """LISTEN forget on a connection of its own, in a background thread.

    Callbacks get each Event; the last `keep` events stay in `recent`.
    """

    def __init__(self, conninfo: str = "", *, keep: int = 100, **connect_kwargs: Any) -> None:
        self.conninfo = conninfo
        self.connect_kwargs = connect_kwargs
        self.recent: collections.deque[Event] = collections.deque(maxlen=keep)
        self.callbacks: list[Callable[[Event], None]] = []
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="forget-listener", daemon=True)

    def on_event(self, callback: Callable[[Event], None]) -> None:
        self.callbacks.append(callback)

    def start(self, timeout: float = 10.0) -> "Listener":
        """Returns once LISTEN is in effect: nothing committed after that is missed."""
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("LISTEN forget did not start")
        if self._failure is not None:
            raise self._failure
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        try:
            with psycopg.connect(self.conninfo, autocommit=True, **self.connect_kwargs) as conn:
                conn.execute("LISTEN forget")
                self._ready.set()
                while not self._stop.is_set():
                    for note in conn.notifies(timeout=0.5):
                        self._deliver(note.payload)
        except BaseException as e:  # reported to start(), or ends the thread
            self._failure = e
            self._ready.set()

    def _deliver(self, payload: str) -> None:
        event = Event.parse(payload)
        self.recent.append(event)
        for callback in list(self.callbacks):
            callback(event)
