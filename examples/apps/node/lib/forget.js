// pg_forget as an application calls it, with node-postgres (package `pg`).
//
// Every call is one statement on a pooled connection (connection parameters
// from PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD, or the pool's
// config). A refused call rejects with ForgetError, built from the server's
// SQLSTATE (err.code) and the error's CONSTRAINT, DETAIL and HINT fields,
// never from the wording of its message.
//
// Listener keeps a connection of its own on LISTEN forget and emits an
// 'event' for every action pg_forget completed (delete, anonymize,
// restore, ...).

import { EventEmitter } from 'node:events';
import pg from 'pg';

/** A call pg_forget refused, in the terms the application shows. */
export class ForgetError extends Error {
  /**
   * @param {number} status the HTTP status that fits (404, 409, 410, 403, 400)
   * @param {string} kind not_found | blocked | pending_deletion |
   *   recovery_window_expired | forbidden | bad_key
   */
  constructor(status, kind, err, reasons = []) {
    super(err.message, { cause: err });
    this.name = 'ForgetError';
    this.status = status;
    this.kind = kind;
    this.sqlstate = err.code;
    this.constraint = err.constraint ?? null;
    this.detail = err.detail ?? null;
    this.hint = err.hint ?? null;
    // For kind === 'blocked': [{ rule, message }], one per failing rule.
    this.reasons = reasons;
  }

  toJSON() {
    const body = {
      error: this.kind,
      message: this.message,
      sqlstate: this.sqlstate,
      constraint: this.constraint,
    };
    if (this.kind === 'blocked') {
      Object.assign(body, { rule: this.constraint, reasons: this.reasons, hint: this.hint });
    }
    return body;
  }
}

/** DETAIL of a refusal by rules: one failing rule per line, `<rule>: <message>`. */
export function reasonsFromDetail(detail) {
  return (detail ?? '')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const at = line.indexOf(': ');
      return at < 0
        ? { rule: null, message: line.trim() }
        : { rule: line.slice(0, at).trim(), message: line.slice(at + 2).trim() };
    });
}

/** The application's view of a server error, or null for one it does not expect. */
export function mapError(err) {
  if (!(err instanceof pg.DatabaseError)) return null;
  switch (err.code) {
    case 'P0002':
      return new ForgetError(404, 'not_found', err);
    case '55000':
      if (err.constraint === 'pending_deletion') {
        // A second soft delete (or anonymize) while the recovery record of
        // the first is retained: restore it first, or delete for good.
        return new ForgetError(409, 'pending_deletion', err);
      }
      if (err.constraint === 'recovery_window') {
        return new ForgetError(410, 'recovery_window_expired', err);
      }
      // Refused by rules: CONSTRAINT is the first failing rule, DETAIL has
      // every failing rule, HINT the eligibility call that shows them.
      return new ForgetError(409, 'blocked', err, reasonsFromDetail(err.detail));
    case '42501':
      return new ForgetError(403, 'forbidden', err);
    case '22P02':
    case '22004':
      return new ForgetError(400, 'bad_key', err);
    default:
      return null;
  }
}

/** The calls of the account portal. */
export class Forget {
  /** @param {pg.Pool} pool */
  constructor(pool) {
    this.pool = pool;
  }

  async #query(text, values) {
    try {
      return (await this.pool.query(text, values)).rows;
    } catch (err) {
      throw mapError(err) ?? err;
    }
  }

  /** At login: active, and for an inactive account the message to show. */
  async accountStatus(key) {
    const [status] = await this.#query('SELECT * FROM forget.account_status($1)', [key]);
    return status;
  }

  /** One row per rule that applies to the action: rule, ok, blocking, message. */
  eligibility(key, action = 'delete') {
    return this.#query('SELECT * FROM forget.eligibility($1, $2)', [key, action]);
  }

  /** delete_client; with grace (an interval such as '30 days') restorable until it ends. */
  delete(key, { reason = null, actor = null, grace = null } = {}) {
    return this.#query(
      `SELECT tbl::text AS tbl, operation, rows::int AS rows
       FROM forget.delete_client($1, reason => $2, actor => $3, grace => $4::interval)`,
      [key, reason, actor, grace],
    );
  }

  restore(key, { actor = null } = {}) {
    return this.#query(
      'SELECT tbl::text AS tbl, operation, rows::int AS rows FROM forget.restore_client($1, actor => $2)',
      [key, actor],
    );
  }

  /** Everything held about the client: { subject, key, exported_at, data }. */
  async export(key) {
    const [row] = await this.#query('SELECT forget.export_client($1) AS export', [key]);
    return row.export;
  }
}

/** One completed action, from the payload of NOTIFY forget. */
export function parseEvent(payload) {
  const data = JSON.parse(payload);
  return {
    action: data.action,
    subject: data.subject,
    key: String(data.key),
    auditId: data.audit_id ?? null,
    // RFC 3339, e.g. 2026-11-30T16:20:00.123456+00:00 (a Date keeps milliseconds)
    at: data.at ? new Date(data.at) : null,
    payload: data,
  };
}

/**
 * LISTEN forget on a connection of its own. Emits 'event' with each parsed
 * event and 'error' when the connection fails; the last `keep` events stay
 * in `recent`.
 */
export class Listener extends EventEmitter {
  constructor(config = {}, { keep = 100 } = {}) {
    super();
    this.config = config;
    this.keep = keep;
    this.recent = [];
    this.client = null;
  }

  /** Resolves once LISTEN is in effect: nothing committed after that is missed. */
  async start() {
    this.client = new pg.Client(this.config);
    this.client.on('notification', (msg) => {
      if (msg.channel !== 'forget') return;
      const event = parseEvent(msg.payload);
      this.recent.push(event);
      if (this.recent.length > this.keep) this.recent.shift();
      this.emit('event', event);
    });
    this.client.on('error', (err) => this.emit('error', err));
    await this.client.connect();
    await this.client.query('LISTEN forget');
    return this;
  }

  async stop() {
    if (this.client) await this.client.end();
    this.client = null;
  }
}
