"""The portal against a real database: the billing example with
examples/apps/setup.sql run on it.

    PGHOST=127.0.0.1 PGPORT=5432 PGDATABASE=billing PGUSER=billing_app \
    FORGET_SUPPORT_USER=billing_support \
    FORGET_ADMIN_DSN=postgresql://postgres@127.0.0.1:5432/billing \
    .venv/bin/python -m unittest -v

The portal connects as PGUSER (the role setup.sql made for it), the help
desk as FORGET_SUPPORT_USER. FORGET_ADMIN_DSN, a superuser, only prepares
states an application cannot reach by itself (a deactivated account, an
anonymized one, a recovery window that has run out) and reads the audit.
The tests use clients 1-12 of the example's data, each for one story.
"""

from __future__ import annotations

import datetime
import json
import os
import queue
import threading
import time
import unittest
import urllib.error
import urllib.request
from typing import Any, Callable
from wsgiref.simple_server import WSGIRequestHandler, make_server

import psycopg

from forget_client import Event, Forget, Listener, reasons_from_detail
from portal import Portal

ADMIN_DSN = os.environ.get("FORGET_ADMIN_DSN")
SUPPORT_USER = os.environ.get("FORGET_SUPPORT_USER", "billing_support")


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


class Server:
    """A portal served on an ephemeral port in a background thread."""

    def __init__(self, app: Portal) -> None:
        self.httpd = make_server("127.0.0.1", 0, app, handler_class=QuietHandler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.headers, json.loads(resp.read())
        except urllib.error.HTTPError as e:
            with e:
                return e.code, e.headers, json.loads(e.read())


class ParsingTest(unittest.TestCase):
    """What the server sends, parsed without a server."""

    def test_event_payload(self) -> None:
        event = Event.parse('{"action": "delete", "subject": "client", "key": "2", "audit_id": 7, '
                            '"at": "2026-11-30T16:20:00.123456+00:00"}')
        self.assertEqual((event.action, event.subject, event.key, event.audit_id), ("delete", "client", "2", 7))
        self.assertEqual(event.at, datetime.datetime(2026, 11, 30, 16, 20, 0, 123456, tzinfo=datetime.timezone.utc))

    def test_detail_of_a_refusal_by_rules(self) -> None:
        self.assertEqual(reasons_from_detail("open_invoices: client has open invoices\n"
                                             "active_services: client has active services: web, mail"),
                         [{"rule": "open_invoices", "message": "client has open invoices"},
                          {"rule": "active_services", "message": "client has active services: web, mail"}])
        self.assertEqual(reasons_from_detail(None), [])


class PortalTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        if not ADMIN_DSN or not os.environ.get("PGUSER"):
            raise RuntimeError("set PGHOST, PGPORT, PGDATABASE, PGUSER and FORGET_ADMIN_DSN (see README.md)")
        cls.admin = psycopg.connect(ADMIN_DSN, autocommit=True)
        with cls.admin.cursor() as cur:
            cur.execute("SELECT current_user")
            app_user = os.environ["PGUSER"]
            if cur.fetchone()[0] == app_user:
                raise RuntimeError("PGUSER must be the application's role, not the admin")
        cls.events: queue.Queue[Event] = queue.Queue()
        cls.listener = Listener()
        cls.listener.on_event(cls.events.put)
        cls.listener.start()
        cls.portal = Server(Portal(Forget(), cls.listener))
        cls.helpdesk = Server(Portal(Forget(user=SUPPORT_USER)))

    @classmethod
    def tearDownClass(cls) -> None:
        cls.portal.close()
        cls.helpdesk.close()
        cls.listener.stop()
        cls.admin.close()

    # --- helpers ---------------------------------------------------------

    def admin_one(self, sql: str, *params: Any) -> Any:
        with self.admin.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchone()

    def wait_for_event(self, match: Callable[[Event], bool], timeout: float = 15.0) -> Event:
        deadline = datetime.datetime.now() + datetime.timedelta(seconds=timeout)
        seen = []
        while datetime.datetime.now() < deadline:
            try:
                event = self.events.get(timeout=0.2)
            except queue.Empty:
                continue
            if match(event):
                return event
            seen.append(event)
        self.fail(f"no matching NOTIFY forget within {timeout} s; got {seen}")

    def assert_error(self, response: tuple[int, Any, Any], status: int, kind: str, sqlstate: str,
                     constraint: str | None = None) -> dict[str, Any]:
        code, _, body = response
        self.assertEqual((code, body.get("error"), body.get("sqlstate")), (status, kind, sqlstate), body)
        if constraint is not None:
            self.assertEqual(body.get("constraint"), constraint, body)
        return body

    # --- login -----------------------------------------------------------

    def test_login_of_an_active_account(self) -> None:
        code, _, body = self.portal.request("POST", "/login", {"client": 2})
        self.assertEqual((code, body), (200, {"client": "2", "active": True}))

    def test_login_of_a_deactivated_account_shows_why(self) -> None:
        self.admin_one("SELECT forget.deactivate(5, actor => 'ops', reason => 'no invoice for 6 months')")
        code, _, body = self.portal.request("POST", "/login", {"client": 5})
        self.assertEqual(code, 403, body)
        self.assertFalse(body["active"])
        self.assertTrue(body["message"].startswith("Your account has been deactivated. Reason: no invoice for 6 months."),
                        body["message"])

    def test_login_of_an_anonymized_account_says_until_when_it_can_be_recovered(self) -> None:
        self.admin_one("SELECT count(*) FROM forget.anonymize_client(6, actor => 'ops', grace => '30 days')")
        code, _, body = self.portal.request("POST", "/login", {"client": 6})
        self.assertEqual(code, 403, body)
        self.assertTrue(body["message"].startswith("Your account has been anonymized. It can be recovered until"),
                        body["message"])

    def test_login_of_an_unknown_or_malformed_account(self) -> None:
        self.assert_error(self.portal.request("POST", "/login", {"client": 999}), 404, "not_found", "P0002")
        self.assert_error(self.portal.request("POST", "/login", {"client": "abc"}), 400, "bad_key", "22P02")

    # --- the account page ------------------------------------------------

    def test_account_page_shows_the_rules_that_block_a_delete(self) -> None:
        code, _, body = self.portal.request("GET", "/accounts/1")
        self.assertEqual(code, 200, body)
        self.assertFalse(body["deletable"])
        self.assertEqual(sorted(body["reasons"]),
                         ["client has active services", "client has open invoices", "client has recurring invoices"])

    def test_account_page_of_a_client_that_can_be_deleted(self) -> None:
        code, _, body = self.portal.request("GET", "/accounts/2")
        self.assertEqual(code, 200, body)
        self.assertTrue(body["deletable"])
        self.assertEqual(body["reasons"], [])
        self.assertTrue(all(r["ok"] for r in body["rules"]) and len(body["rules"]) == 3, body["rules"])

    # --- delete ----------------------------------------------------------

    def test_delete_refused_by_rules_names_each_rule(self) -> None:
        page = self.portal.request("GET", "/accounts/1")[2]
        failing = [{"rule": r["rule"], "message": r["message"]} for r in page["rules"] if not r["ok"]]
        body = self.assert_error(
            self.portal.request("POST", "/accounts/1/delete", {"reason": "customer asked", "actor": "alice"}),
            409, "blocked", "55000", constraint=failing[0]["rule"])
        self.assertEqual(body["rule"], "active_services")
        self.assertEqual(sorted(body["reasons"], key=lambda r: r["rule"]), sorted(failing, key=lambda r: r["rule"]))
        self.assertEqual(body["hint"], "SELECT * FROM forget.eligibility(1, 'delete', 'client');")
        self.assertEqual(self.portal.request("POST", "/login", {"client": 1})[0], 200, "client 1 is still there")

    def test_delete_with_reason_and_actor_is_audited_and_notified(self) -> None:
        code, _, body = self.portal.request("POST", "/accounts/3/delete",
                                            {"reason": "GDPR request #4711", "actor": "alice@staff"})
        self.assertEqual(code, 200, body)
        self.assertEqual(body["rows"]["billing.clients (delete)"], 1)
        action, reason, actor, audit_id = self.admin_one(
            "SELECT action, reason, actor, id FROM forget.audit WHERE subject_key = '3' ORDER BY id DESC LIMIT 1")
        self.assertEqual((action, reason, actor), ("delete", "GDPR request #4711", "alice@staff"))
        event = self.wait_for_event(lambda e: e.key == "3")
        self.assertEqual((event.action, event.subject, event.audit_id), ("delete", "client", audit_id))
        # Gone: at login, and for a second delete.
        self.assert_error(self.portal.request("POST", "/login", {"client": 3}), 404, "not_found", "P0002")
        self.assert_error(self.portal.request("POST", "/accounts/3/delete", {"actor": "alice@staff"}),
                          404, "not_found", "P0002")

    def test_delete_of_an_unknown_client_is_not_found(self) -> None:
        self.assert_error(self.portal.request("POST", "/accounts/999/delete", {"actor": "alice"}),
                          404, "not_found", "P0002")

    def test_a_second_soft_delete_while_a_recovery_record_is_retained(self) -> None:
        # Staff anonymized client 7 with a 30-day recovery window; the portal's
        # soft delete would need a second recovery record.
        self.admin_one("SELECT count(*) FROM forget.anonymize_client(7, actor => 'ops', grace => '30 days')")
        body = self.assert_error(
            self.portal.request("POST", "/accounts/7/delete", {"actor": "alice", "grace": "30 days"}),
            409, "pending_deletion", "55000", constraint="pending_deletion")
        self.assertIn("pending deletion", body["message"])

    # --- restore ---------------------------------------------------------

    def test_restore_during_the_recovery_window(self) -> None:
        code, _, body = self.portal.request("POST", "/accounts/9/delete",
                                            {"reason": "closing", "actor": "alice", "grace": "30 days"})
        self.assertEqual((code, body["restorable_for"]), (200, "30 days"), body)
        # Soft-deleted: the login is refused with a message saying until when
        # the account can be recovered, and no offer to reactivate it.
        code, _, body = self.portal.request("POST", "/login", {"client": 9})
        self.assertEqual(code, 403, body)
        self.assertTrue(body["message"].startswith("Your account has been deleted. It can be recovered until "),
                        body["message"])
        self.assertNotIn("reactivate", body["message"])
        code, _, body = self.portal.request("POST", "/accounts/9/restore", {"actor": "alice"})
        self.assertEqual(code, 200, body)
        self.assertGreater(body["rows"], 20)
        self.assertEqual(self.portal.request("POST", "/login", {"client": 9})[0], 200)
        self.wait_for_event(lambda e: e.key == "9" and e.action == "restore")

    def test_restore_after_the_recovery_window_has_expired(self) -> None:
        code, _, body = self.portal.request("POST", "/accounts/8/delete", {"actor": "alice", "grace": "30 days"})
        self.assertEqual(code, 200, body)
        # 30 days later (the fixture ages the record: no application can).
        self.admin_one("UPDATE forget.deleted_clients SET retention_until = now() - interval '1 day' "
                       "WHERE original_key = '8' AND state = 'retained' RETURNING id")
        body = self.assert_error(self.portal.request("POST", "/accounts/8/restore", {"actor": "alice"}),
                                 410, "recovery_window_expired", "55000", constraint="recovery_window")
        self.assertIn("Recovery window has expired", body["message"])

    # --- privileges --------------------------------------------------------

    def test_the_help_desk_role_may_look_but_not_delete_or_export(self) -> None:
        self.assertEqual(self.helpdesk.request("GET", "/accounts/10")[0], 200)
        self.assertEqual(self.helpdesk.request("POST", "/login", {"client": 10})[0], 200)
        self.assert_error(self.helpdesk.request("POST", "/accounts/10/delete", {"actor": "bob"}),
                          403, "forbidden", "42501")
        self.assert_error(self.helpdesk.request("GET", "/accounts/10/export"), 403, "forbidden", "42501")
        self.assertEqual(self.portal.request("POST", "/login", {"client": 10})[0], 200, "client 10 is still there")

    # --- export ----------------------------------------------------------

    def test_export_is_a_json_download(self) -> None:
        code, headers, body = self.portal.request("GET", "/accounts/11/export")
        self.assertEqual(code, 200, body)
        self.assertEqual(headers["Content-Type"], "application/json")
        self.assertEqual(headers["Content-Disposition"], 'attachment; filename="client-11-export.json"')
        self.assertEqual((body["subject"], str(body["key"])), ("client", "11"))
        self.assertEqual(body["data"]["billing.clients"][0]["email"], "client11@example.com")
        self.assertEqual(len(body["data"]["billing.invoices"]), 3)
        self.assert_error(self.portal.request("GET", "/accounts/999/export"), 404, "not_found", "P0002")

    # --- LISTEN forget ---------------------------------------------------

    def test_listen_receives_a_delete_committed_on_another_connection(self) -> None:
        with psycopg.connect(ADMIN_DSN) as other:  # commits when the block ends
            other.execute("SELECT count(*) FROM forget.delete_client(12, reason => 'retention', actor => 'cron')")
            audit_id, at = other.execute(
                "SELECT id, at FROM forget.audit WHERE subject_key = '12' ORDER BY id DESC LIMIT 1").fetchone()
            time.sleep(0.2)
            self.assertFalse(any(e.key == "12" for e in self.listener.recent), "nothing is delivered before the commit")
        event = self.wait_for_event(lambda e: e.key == "12")
        self.assertEqual((event.action, event.subject, event.key, event.audit_id), ("delete", "client", "12", audit_id))
        self.assertIn("at", event.payload, "NOTIFY carries the action's time")
        self.assertIsInstance(event.at, datetime.datetime)
        self.assertIsNotNone(event.at.tzinfo)
        self.assertLess(abs((event.at - at).total_seconds()), 60)
        code, _, recent = self.portal.request("GET", "/events")
        self.assertIn({"action": "delete", "subject": "client", "key": "12", "audit_id": audit_id,
                       "at": event.at.isoformat()}, recent)


if __name__ == "__main__":
    unittest.main()
