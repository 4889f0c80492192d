// The billing account portal: a small node:http application on pg_forget.
//
//   POST /login                    {"client": 2}  -> 200, or 403 with the message to show
//   GET  /accounts/<key>           the account page: can it be deleted, and if not why
//   POST /accounts/<key>/delete    {"reason", "actor", "grace"?}
//   POST /accounts/<key>/restore   {"actor"}  (during the recovery window of a soft delete)
//   GET  /accounts/<key>/export    everything held about the client, as a JSON download
//   GET  /events                   the actions pg_forget completed lately (LISTEN forget)

import http from 'node:http';
import { ForgetError } from './forget.js';

class BadRequest extends Error {}

function reply(res, status, body, headers = {}) {
  const text = JSON.stringify(body, null, 2);
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  if (chunks.length === 0) return {};
  let body;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new BadRequest('the request body is not JSON');
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new BadRequest('the request body must be a JSON object');
  }
  return body;
}

const safeName = (key) => key.replace(/[^A-Za-z0-9_.-]/g, '_');

const eventJson = (e) => ({
  action: e.action,
  subject: e.subject,
  key: e.key,
  audit_id: e.auditId,
  at: e.at ? e.at.toISOString() : null,
});

/**
 * The request handler. `forget` makes the calls, `listener` (optional)
 * feeds /events.
 */
export function createPortal({ forget, listener = null, log = console }) {
  const handlers = {
    // At login: an inactive account is refused with the message pg_forget
    // wrote for it (deactivated: why and whom to contact; anonymized: until
    // when it can be recovered).
    async login(_, body) {
      const key = String(body.client ?? '');
      const status = await forget.accountStatus(key);
      if (!status.active) return [403, { client: key, active: false, message: status.message }];
      return [200, { client: key, active: true }];
    },

    // Can the account be deleted? If not, the reasons, as the rules word them.
    async accountPage(key) {
      const rules = await forget.eligibility(key, 'delete');
      const reasons = rules.filter((r) => !r.ok).map((r) => r.message);
      return [200, {
        client: key,
        deletable: reasons.length === 0,
        reasons,
        rules: rules.map(({ rule, ok, message }) => ({ rule, ok, message })),
      }];
    },

    async delete(key, body) {
      const grace = body.grace ?? null;
      const steps = await forget.delete(key, { reason: body.reason, actor: body.actor, grace });
      const rows = Object.fromEntries(steps.map((s) => [`${s.tbl} (${s.operation})`, s.rows]));
      return [200, { client: key, deleted: true, restorable_for: grace, rows }];
    },

    async restore(key, body) {
      const steps = await forget.restore(key, { actor: body.actor });
      return [200, { client: key, restored: true, rows: steps.reduce((n, s) => n + s.rows, 0) }];
    },

    async export(key) {
      const data = await forget.export(key);
      return [200, data, { 'Content-Disposition': `attachment; filename="client-${safeName(key)}-export.json"` }];
    },

    async events() {
      return [200, (listener?.recent ?? []).map(eventJson)];
    },
  };

  const routes = [
    ['POST', /^\/login$/, handlers.login],
    ['GET', /^\/accounts\/([^/]+)$/, handlers.accountPage],
    ['POST', /^\/accounts\/([^/]+)\/delete$/, handlers.delete],
    ['POST', /^\/accounts\/([^/]+)\/restore$/, handlers.restore],
    ['GET', /^\/accounts\/([^/]+)\/export$/, handlers.export],
    ['GET', /^\/events$/, handlers.events],
  ];

  return async function portal(req, res) {
    const path = new URL(req.url, 'http://portal').pathname;
    const matching = routes.filter(([, pattern]) => pattern.test(path));
    const route = matching.find(([method]) => method === req.method);
    if (!route) {
      return matching.length
        ? reply(res, 405, { error: 'method_not_allowed' })
        : reply(res, 404, { error: 'no_such_page' });
    }
    const [, pattern, handler] = route;
    const key = pattern.exec(path)[1];
    try {
      const body = await readJson(req);
      const [status, payload, headers] = await handler(key === undefined ? null : decodeURIComponent(key), body);
      reply(res, status, payload, headers);
    } catch (err) {
      if (err instanceof ForgetError) return reply(res, err.status, err);
      if (err instanceof BadRequest || err instanceof URIError) return reply(res, 400, { error: 'bad_request', message: err.message });
      log.error(`${req.method} ${path}:`, err);
      reply(res, 500, { error: 'internal', message: 'internal error' });
    }
  };
}

export function createServer(options) {
  return http.createServer(createPortal(options));
}
