// What the server sends, parsed without a server.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseEvent, reasonsFromDetail } from '../lib/forget.js';

test('an event payload, with its time', () => {
  const e = parseEvent('{"action": "delete", "subject": "client", "key": "2", "audit_id": 7, "at": "2026-11-30T16:20:00.123456+00:00"}');
  assert.deepEqual([e.action, e.subject, e.key, e.auditId], ['delete', 'client', '2', 7]);
  assert.equal(e.at.toISOString(), '2026-11-30T16:20:00.123Z');
});

test('the DETAIL of a refusal by rules', () => {
  assert.deepEqual(
    reasonsFromDetail('open_invoices: client has open invoices\nactive_services: client has active services: web, mail'),
    [
      { rule: 'open_invoices', message: 'client has open invoices' },
      { rule: 'active_services', message: 'client has active services: web, mail' },
    ],
  );
  assert.deepEqual(reasonsFromDetail(null), []);
});
