// Runs the portal: node server.js [port]
// Connection parameters come from PGHOST, PGPORT, PGDATABASE, PGUSER and
// PGPASSWORD (connect as the role examples/apps/setup.sql made).

import pg from 'pg';
import { Forget, Listener } from './lib/forget.js';
import { createServer } from './lib/portal.js';

const port = Number(process.argv[2] ?? process.env.PORT ?? 8000);
const pool = new pg.Pool({ max: 5 });
const listener = new Listener();
listener.on('event', (e) =>
  console.log(`pg_forget: ${e.action} ${e.subject} ${e.key} (audit ${e.auditId}) at ${e.at?.toISOString() ?? '?'}`));
listener.on('error', (err) => {
  console.error('LISTEN forget failed:', err.message);
  process.exit(1);
});
await listener.start();

const server = createServer({ forget: new Forget(pool), listener });
server.listen(port, '127.0.0.1', () => console.log(`portal on http://127.0.0.1:${server.address().port}`));

const shutdown = () => server.close(async () => {
  await listener.stop();
  await pool.end();
});
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
