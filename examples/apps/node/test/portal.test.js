// The portal against a real database: the billing example with
// examples/apps/setup.sql run on it.
//
//   PGHOST=127.0.0.1 PGPORT=5432 PGDATABASE=billing PGUSER=billing_app \
//   FORGET_SUPPORT_USER=billing_support \
//   FORGET_ADMIN_DSN=postgresql://postgres@127.0.0.1:5432/billing \
//   node --test
//
// The portal connects as PGUSER (the role setup.sql made for it), the help
// desk as FORGET_SUPPORT_USER. FORGET_ADMIN_DSN, a superuser, only prepares
// states an application cannot reach by itself (a deactivated account, an
// anonymized one, a recovery window that has run out) and reads the audit.
// The tests use clients 1-12 of the example's data, each for one story.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { Forget, Listener } from '../lib/forget.js';
import { createServer } from '../lib/portal.js';

const ADMIN_DSN = process.env.FORGET_ADMIN_DSN;
const SUPPORT_USER = process.env.FORGET_SUPPORT_USER ?? 'billing_support';

/** A portal served on an ephemeral port. */
async function serve(options) {
  const server = createServer({ ...options, log: { error() {} } });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    async request(method, path, body) {
      const res = await fetch(url + path, {
        method,
        headers: { 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, headers: res.headers, body: await res.json() };
    },
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

function assertError(res, status, kind, sqlstate, constraint) {
  assert.deepEqual([res.status, res.body.error, res.body.sqlstate], [status, kind, sqlstate], JSON.stringify(res.body));
  if (constraint !== undefined) assert.equal(res.body.constraint, constraint, JSON.stringify(res.body));
  return res.body;
}

describe('billing portal on pg_forget', () => {
  let admin, appPool, supportPool, listener, portal, helpdesk;
  const events = [];
  const waiters = [];

  /** The first event (already received or to come) that matches. */
  function waitForEvent(match, timeoutMs = 15000) {
    const seen = events.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching NOTIFY forget within ${timeoutMs} ms; got ${JSON.stringify(events.map((e) => e.payload))}`)), timeoutMs);
      waiters.push({ match, resolve: (e) => { clearTimeout(timer); resolve(e); } });
    });
  }

  const adminQuery = async (text, values) => (await admin.query(text, values)).rows;

  before(async () => {
    if (!ADMIN_DSN || !process.env.PGUSER) {
      throw new Error('set PGHOST, PGPORT, PGDATABASE, PGUSER and FORGET_ADMIN_DSN (see README.md)');
    }
    admin = new pg.Client({ connectionString: ADMIN_DSN });
    await admin.connect();
    const [{ current_user: adminUser }] = await adminQuery('SELECT current_user');
    assert.notEqual(adminUser, process.env.PGUSER, 'PGUSER must be the application\'s role, not the admin');

    listener = new Listener();
    listener.on('event', (e) => {
      events.push(e);
      for (const w of waiters.filter((w) => w.match(e))) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(e);
      }
    });
    await listener.start();
    appPool = new pg.Pool({ max: 3 });
    supportPool = new pg.Pool({ max: 2, user: SUPPORT_USER });
    portal = await serve({ forget: new Forget(appPool), listener });
    helpdesk = await serve({ forget: new Forget(supportPool) });
  });

  after(async () => {
    await portal?.close();
    await helpdesk?.close();
    await listener?.stop();
    await appPool?.end();
    await supportPool?.end();
    await admin?.end();
  });

  describe('login', () => {
    test('an active account logs in', async () => {
      const res = await portal.request('POST', '/login', { client: 2 });
      assert.deepEqual([res.status, res.body], [200, { client: '2', active: true }]);
    });

    test('a deactivated account is told why', async () => {
      await adminQuery("SELECT forget.deactivate(5, actor => 'ops', reason => 'no invoice for 6 months')");
      const res = await portal.request('POST', '/login', { client: 5 });
      assert.equal(res.status, 403);
      assert.equal(res.body.active, false);
      assert.match(res.body.message, /^Your account has been deactivated\. Reason: no invoice for 6 months\./);
    });

    test('an anonymized account is told until when it can be recovered', async () => {
      await adminQuery("SELECT count(*) FROM forget.anonymize_client(6, actor => 'ops', grace => '30 days')");
      const res = await portal.request('POST', '/login', { client: 6 });
      assert.equal(res.status, 403);
      assert.match(res.body.message, /^Your account has been anonymized\. It can be recovered until /);
    });

    test('an unknown or malformed account', async () => {
      assertError(await portal.request('POST', '/login', { client: 999 }), 404, 'not_found', 'P0002');
      assertError(await portal.request('POST', '/login', { client: 'abc' }), 400, 'bad_key', '22P02');
    });
  });

  describe('account page', () => {
    test('shows the rules that block a delete', async () => {
      const res = await portal.request('GET', '/accounts/1');
      assert.equal(res.status, 200);
      assert.equal(res.body.deletable, false);
      assert.deepEqual([...res.body.reasons].sort(),
        ['client has active services', 'client has open invoices', 'client has recurring invoices']);
    });

    test('of a client that can be deleted', async () => {
      const res = await portal.request('GET', '/accounts/2');
      assert.equal(res.status, 200);
      assert.equal(res.body.deletable, true);
      assert.deepEqual(res.body.reasons, []);
      assert.equal(res.body.rules.length, 3);
      assert.ok(res.body.rules.every((r) => r.ok));
    });
  });

  describe('delete', () => {
    test('refused by rules, naming each rule', async () => {
      const page = (await portal.request('GET', '/accounts/1')).body;
      const failing = page.rules.filter((r) => !r.ok).map(({ rule, message }) => ({ rule, message }));
      const body = assertError(
        await portal.request('POST', '/accounts/1/delete', { reason: 'customer asked', actor: 'alice' }),
        409, 'blocked', '55000', failing[0].rule);
      assert.equal(body.rule, 'active_services');
      const byRule = (a, b) => a.rule.localeCompare(b.rule);
      assert.deepEqual([...body.reasons].sort(byRule), [...failing].sort(byRule));
      assert.equal(body.hint, "SELECT * FROM forget.eligibility(1, 'delete', 'client');");
      assert.equal((await portal.request('POST', '/login', { client: 1 })).status, 200, 'client 1 is still there');
    });

    test('with reason and actor: audited and notified', async () => {
      const res = await portal.request('POST', '/accounts/3/delete', { reason: 'GDPR request #4711', actor: 'alice@staff' });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.rows['billing.clients (delete)'], 1);
      const [audit] = await adminQuery(
        "SELECT action, reason, actor, id::int AS id FROM forget.audit WHERE subject_key = '3' ORDER BY id DESC LIMIT 1");
      assert.deepEqual([audit.action, audit.reason, audit.actor], ['delete', 'GDPR request #4711', 'alice@staff']);
      const event = await waitForEvent((e) => e.key === '3');
      assert.deepEqual([event.action, event.subject, event.auditId], ['delete', 'client', audit.id]);
      // Gone: at login, and for a second delete.
      assertError(await portal.request('POST', '/login', { client: 3 }), 404, 'not_found', 'P0002');
      assertError(await portal.request('POST', '/accounts/3/delete', { actor: 'alice@staff' }), 404, 'not_found', 'P0002');
    });

    test('of an unknown client: not found', async () => {
      assertError(await portal.request('POST', '/accounts/999/delete', { actor: 'alice' }), 404, 'not_found', 'P0002');
    });

    test('a second soft delete while a recovery record is retained', async () => {
      // Staff anonymized client 7 with a 30-day recovery window; the portal's
      // soft delete would need a second recovery record.
      await adminQuery("SELECT count(*) FROM forget.anonymize_client(7, actor => 'ops', grace => '30 days')");
      const body = assertError(
        await portal.request('POST', '/accounts/7/delete', { actor: 'alice', grace: '30 days' }),
        409, 'pending_deletion', '55000', 'pending_deletion');
      assert.match(body.message, /pending deletion/);
    });
  });

  describe('restore', () => {
    test('during the recovery window', async () => {
      let res = await portal.request('POST', '/accounts/9/delete', { reason: 'closing', actor: 'alice', grace: '30 days' });
      assert.deepEqual([res.status, res.body.restorable_for], [200, '30 days']);
      // Soft-deleted: refused with until when it can be recovered, no reactivation offered.
      const login = await portal.request('POST', '/login', { client: 9 });
      assert.equal(login.status, 403);
      assert.match(login.body.message, /^Your account has been deleted\. It can be recovered until /);
      assert.doesNotMatch(login.body.message, /reactivate/);
      res = await portal.request('POST', '/accounts/9/restore', { actor: 'alice' });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.ok(res.body.rows > 20, `rows put back: ${res.body.rows}`);
      assert.equal((await portal.request('POST', '/login', { client: 9 })).status, 200);
      await waitForEvent((e) => e.key === '9' && e.action === 'restore');
    });

    test('after the recovery window has expired', async () => {
      const res = await portal.request('POST', '/accounts/8/delete', { actor: 'alice', grace: '30 days' });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      // 30 days later (the fixture ages the record: no application can).
      await adminQuery(`UPDATE forget.deleted_clients SET retention_until = now() - interval '1 day'
                        WHERE original_key = '8' AND state = 'retained'`);
      const body = assertError(await portal.request('POST', '/accounts/8/restore', { actor: 'alice' }),
        410, 'recovery_window_expired', '55000', 'recovery_window');
      assert.match(body.message, /Recovery window has expired/);
    });
  });

  test('the help desk role may look but not delete or export', async () => {
    assert.equal((await helpdesk.request('GET', '/accounts/10')).status, 200);
    assert.equal((await helpdesk.request('POST', '/login', { client: 10 })).status, 200);
    assertError(await helpdesk.request('POST', '/accounts/10/delete', { actor: 'bob' }), 403, 'forbidden', '42501');
    assertError(await helpdesk.request('GET', '/accounts/10/export'), 403, 'forbidden', '42501');
    assert.equal((await portal.request('POST', '/login', { client: 10 })).status, 200, 'client 10 is still there');
  });

  test('export is a JSON download', async () => {
    const res = await portal.request('GET', '/accounts/11/export');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/json');
    assert.equal(res.headers.get('content-disposition'), 'attachment; filename="client-11-export.json"');
    assert.deepEqual([res.body.subject, String(res.body.key)], ['client', '11']);
    assert.equal(res.body.data['billing.clients'][0].email, 'client11@example.com');
    assert.equal(res.body.data['billing.invoices'].length, 3);
    assertError(await portal.request('GET', '/accounts/999/export'), 404, 'not_found', 'P0002');
  });

  test('LISTEN receives a delete committed on another connection', async () => {
    const other = new pg.Client({ connectionString: ADMIN_DSN });
    await other.connect();
    let audit;
    try {
      await other.query('BEGIN');
      await other.query("SELECT count(*) FROM forget.delete_client(12, reason => 'retention', actor => 'cron')");
      [audit] = (await other.query(
        "SELECT id::int AS id, at FROM forget.audit WHERE subject_key = '12' ORDER BY id DESC LIMIT 1")).rows;
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.ok(!events.some((e) => e.key === '12'), 'nothing is delivered before the commit');
      await other.query('COMMIT');
    } finally {
      await other.end();
    }
    const event = await waitForEvent((e) => e.key === '12');
    assert.deepEqual([event.action, event.subject, event.key, event.auditId], ['delete', 'client', '12', audit.id]);
    assert.ok('at' in event.payload, `NOTIFY carries the action's time: ${JSON.stringify(event.payload)}`);
    assert.ok(event.at instanceof Date && !Number.isNaN(event.at.getTime()), `at parses: ${event.payload.at}`);
    assert.ok(Math.abs(event.at - audit.at) < 60_000, `at ${event.payload.at} is the action's time (${audit.at.toISOString()})`);
    const recent = (await portal.request('GET', '/events')).body;
    assert.ok(recent.some((e) => e.key === '12' && e.audit_id === audit.id && e.at === event.at.toISOString()),
      JSON.stringify(recent));
  });
});
