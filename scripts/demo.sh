#!/usr/bin/env bash
# Sets everything up on a fresh Debian machine (as root), installs pg_forget
# into PostgreSQL 15, starts a throwaway cluster and runs the demos. The
# cluster stays up afterwards so you can explore; the last lines say how.
set -euo pipefail
cd "$(dirname "$0")/.."
PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
PORT=${PGFORGET_DEMO_PORT:-55434}
DATA=${PGFORGET_DEMO_DATA:-/tmp/pg_forget-demo-cluster}
bash scripts/setup.sh
echo "== building and installing pg_forget"
bash scripts/install.sh >/dev/null
bash scripts/cluster.sh start "$DATA" "$PORT"
PSQL="psql -h 127.0.0.1 -p $PORT -U postgres -X -v ON_ERROR_STOP=1"
for example in billing marketplace association contractors; do
    db="${example}_demo"
    # pg_cron lives in the cluster's cron.database_name (postgres): the
    # contractors demo, which schedules a job, runs there.
    if [ "$example" = contractors ]; then
        db=postgres
        $PSQL -q -d postgres -c "CREATE EXTENSION IF NOT EXISTS pg_cron"
    else
        $PSQL -q -d postgres -c "CREATE DATABASE $db"
    fi
    $PSQL -q -d "$db" -c "CREATE EXTENSION pg_forget" \
        -f "examples/$example/schema.sql" -f "examples/$example/data.sql" -f "examples/$example/config.sql" >/dev/null
    echo
    echo "######## examples/$example"
    $PSQL -d "$db" -f "examples/$example/demo.sql"
done
echo
echo "The demo cluster is still running. Explore it with:"
echo "  psql -h 127.0.0.1 -p $PORT -U postgres -d billing_demo"
echo "Stop it with:  bash scripts/cluster.sh stop $DATA"
