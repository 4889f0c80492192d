#!/usr/bin/env bash
# The whole test suite: unit tests of the pure planner, #[pg_test]s inside
# PostgreSQL, then the end-to-end suite (pgrx-tests/) against a throwaway
# PostgreSQL 15 cluster with pg_cron, over real client connections.
set -euo pipefail
cd "$(dirname "$0")/.."
PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
PORT=${PGFORGET_PORT:-55432}
DATA=${PGFORGET_TEST_DATA:-/tmp/pg_forget-test-cluster}
bash scripts/setup.sh

LOG=$(mktemp)
echo "== unit tests and #[pg_test]s (cargo pgrx test)"
# The postgres OS user runs the test server and must reach the build tree.
chmod o+rx "$PWD" "$(dirname "$PWD")" 2>/dev/null || true
cargo pgrx test pg15 --runas postgres --pgdata /tmp/pgrx-pgdata 2>&1 | tee -a "$LOG"

echo "== installing the released versions (for the upgrade test) and this one into PostgreSQL 15"
grep -v '^#' scripts/releases | while read -r release _; do
    [ -n "$release" ] && bash scripts/install-release.sh "$release"
done
bash scripts/install.sh
# The upgrade scripts in sql/ are generated: a stale committed one fails CI.
if [ -n "${CI:-}" ] && ! git diff --quiet -- sql/; then
    git --no-pager diff --stat -- sql/
    echo "sql/: the committed upgrade scripts are stale: run bash scripts/install.sh and commit sql/" >&2
    exit 1
fi

echo "== end-to-end suite on a cluster at port $PORT"
bash scripts/cluster.sh start "$DATA" "$PORT" "fsync = off" "synchronous_commit = off"
REPLICA_PORT=$((PORT + 1))
bash scripts/cluster.sh replica "$DATA-replica" "$REPLICA_PORT" "$PORT"
trap 'bash scripts/cluster.sh stop "$DATA-replica"; bash scripts/cluster.sh stop "$DATA"' EXIT
PGFORGET_REPLICA_PORT=$REPLICA_PORT PGFORGET_PORT=$PORT cargo test --manifest-path pgrx-tests/Cargo.toml --tests --no-fail-fast -- --test-threads 4 2>&1 | tee -a "$LOG"

# One closing line for the whole suite (every cargo test result line summed).
passed=$(grep -o '[0-9]* passed' "$LOG" | awk '{s += $1} END {print s + 0}')
failed=$(grep -o '[0-9]* failed' "$LOG" | awk '{s += $1} END {print s + 0}')
echo "pg_forget: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
