"""The billing account portal: a small WSGI application on pg_forget.

    POST /login                    {"client": 2}  -> 200, or 403 with the message to show
    GET  /accounts/<key>           the account page: can it be deleted, and if not why
    POST /accounts/<key>/delete    {"reason", "actor", "grace"?}
    POST /accounts/<key>/restore   {"actor"}  (during the recovery window of a soft delete)
    GET  /accounts/<key>/export    everything held about the client, as a JSON download
    GET  /events                   the actions pg_forget completed lately (LISTEN forget)

Run it (connection parameters from PGHOST, PGPORT, PGDATABASE, PGUSER):

    python portal.py --port 8000
"""

from __future__ import annotations

import argparse
import json
import logging
import re
from typing import Any, Callable, Iterable
from wsgiref.simple_server import make_server

from forget_client import Event, Forget, ForgetError, Listener

log = logging.getLogger("portal")

STATUS_TEXT = {
    200: "200 OK",
    400: "400 Bad Request",
    403: "403 Forbidden",
    404: "404 Not Found",
    405: "405 Method Not Allowed",
    409: "409 Conflict",
    410: "410 Gone",
    500: "500 Internal Server Error",
}


class Response:
    def __init__(self, status: int, body: Any, headers: Iterable[tuple[str, str]] = ()) -> None:
        self.status = status
        self.body = json.dumps(body, indent=2, default=str).encode()
        self.headers = [("Content-Type", "application/json"), *headers]


class Portal:
    """The WSGI application. `forget` makes the calls, `listener` (optional) feeds /events."""

    def __init__(self, forget: Forget, listener: Listener | None = None) -> None:
        self.forget = forget
        self.listener = listener
        self.routes: list[tuple[str, re.Pattern[str], Callable[..., Response]]] = [
            ("POST", re.compile(r"/login"), self.login),
            ("GET", re.compile(r"/accounts/([^/]+)"), self.account_page),
            ("POST", re.compile(r"/accounts/([^/]+)/delete"), self.delete),
            ("POST", re.compile(r"/accounts/([^/]+)/restore"), self.restore),
            ("GET", re.compile(r"/accounts/([^/]+)/export"), self.export),
            ("GET", re.compile(r"/events"), self.events),
        ]

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        response = self.dispatch(environ)
        headers = [*response.headers, ("Content-Length", str(len(response.body)))]
        start_response(STATUS_TEXT.get(response.status, f"{response.status} Error"), headers)
        return [response.body]

    def dispatch(self, environ: dict[str, Any]) -> Response:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "/")
        for route_method, pattern, handler in self.routes:
            match = pattern.fullmatch(path)
            if match:
                if method != route_method:
                    continue
                try:
                    return handler(*match.groups(), body=read_json(environ))
                except ForgetError as e:
                    return Response(e.status, e.to_json())
                except ValueError as e:
                    return Response(400, {"error": "bad_request", "message": str(e)})
                except Exception:
                    log.exception("%s %s", method, path)
                    return Response(500, {"error": "internal", "message": "internal error"})
        if any(pattern.fullmatch(path) for _, pattern, _ in self.routes):
            return Response(405, {"error": "method_not_allowed"})
        return Response(404, {"error": "no_such_page"})

    # --- the flows -------------------------------------------------------

    def login(self, body: dict[str, Any]) -> Response:
        """At login: an inactive account is refused with the message pg_forget wrote for it
        (deactivated: why and whom to contact; anonymized: until when it can be recovered)."""
        key = str(body.get("client", ""))
        status = self.forget.account_status(key)
        if not status["active"]:
            return Response(403, {"client": key, "active": False, "message": status["message"]})
        return Response(200, {"client": key, "active": True})

    def account_page(self, key: str, body: dict[str, Any]) -> Response:
        """Can the account be deleted? If not, the reasons, as the rules word them."""
        rules = self.forget.eligibility(key, "delete")
        reasons = [r["message"] for r in rules if not r["ok"]]
        return Response(200, {
            "client": key,
            "deletable": not reasons,
            "reasons": reasons,
            "rules": [{"rule": r["rule"], "ok": r["ok"], "message": r["message"]} for r in rules],
        })

    def delete(self, key: str, body: dict[str, Any]) -> Response:
        grace = body.get("grace")
        steps = self.forget.delete(key, reason=body.get("reason"), actor=body.get("actor"), grace=grace)
        return Response(200, {
            "client": key,
            "deleted": True,
            "restorable_for": grace,
            "rows": {f"{s['tbl']} ({s['operation']})": s["rows"] for s in steps},
        })

    def restore(self, key: str, body: dict[str, Any]) -> Response:
        steps = self.forget.restore(key, actor=body.get("actor"))
        return Response(200, {"client": key, "restored": True, "rows": sum(s["rows"] for s in steps)})

    def export(self, key: str, body: dict[str, Any]) -> Response:
        data = self.forget.export(key)
        filename = f"client-{safe_name(key)}-export.json"
        return Response(200, data, [("Content-Disposition", f'attachment; filename="{filename}"')])

    def events(self, body: dict[str, Any]) -> Response:
        events = list(self.listener.recent) if self.listener else []
        return Response(200, [event_json(e) for e in events])


def event_json(e: Event) -> dict[str, Any]:
    return {
        "action": e.action,
        "subject": e.subject,
        "key": e.key,
        "audit_id": e.audit_id,
        "at": e.at.isoformat() if e.at else None,
    }


def safe_name(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", key)


def read_json(environ: dict[str, Any]) -> dict[str, Any]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if not length:
        return {}
    body = json.loads(environ["wsgi.input"].read(length))
    if not isinstance(body, dict):
        raise ValueError("the request body must be a JSON object")
    return body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--conninfo", default="", help="libpq connection string (default: the PG* environment)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    listener = Listener(args.conninfo)
    listener.on_event(lambda e: log.info("pg_forget: %s %s %s (audit %s) at %s", e.action, e.subject, e.key, e.audit_id, e.at))
    listener.start()
    with make_server(args.host, args.port, Portal(Forget(args.conninfo), listener)) as server:
        log.info("portal on http://%s:%s", args.host, server.server_port)
        try:
            server.serve_forever()
        finally:
            listener.stop()


if __name__ == "__main__":
    main()
