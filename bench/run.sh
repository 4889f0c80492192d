#!/usr/bin/env bash
# pg_forget's benchmark: builds the extension in release mode, starts a
# cluster with durable settings on port 55435, generates the data and runs
# every workload against its hand-written SQL baseline in the same run.
#   bash bench/run.sh [--scale 1.0] [--samples 200]
# Scale 1.0: 100,000 billing clients (1,000,000 for workload 4) and
# 1,000,000 association members with 100,000 cleanup candidates.
set -euo pipefail
cd "$(dirname "$0")/.."
PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
PORT=${PGFORGET_BENCH_PORT:-55435}
DATA=${PGFORGET_BENCH_DATA:-/tmp/pg_forget-bench-cluster}
bash scripts/setup.sh
bash scripts/install.sh --release >/dev/null
bash scripts/cluster.sh start "$DATA" "$PORT" \
    "shared_buffers = '2GB'" "work_mem = '32MB'" "maintenance_work_mem = '512MB'" \
    "max_wal_size = '8GB'" "checkpoint_timeout = '30min'"
trap 'bash scripts/cluster.sh stop "$DATA"' EXIT
cargo run --quiet --release --manifest-path bench/Cargo.toml -- --port "$PORT" "$@"
