#!/usr/bin/env bash
# Installs what pg_forget needs on a Debian machine, as root, skipping what is
# already there: PostgreSQL 15 (server, headers, pg_cron), clang for bindgen,
# sudo (cargo pgrx test --runas), cargo-pgrx 0.18.1, and pgrx's pg15 config.
set -euo pipefail
PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
packages="postgresql-15 postgresql-server-dev-15 postgresql-15-cron libclang-dev clang sudo"
missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "setup: installing$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
# Debian starts a default cluster on 5432; pg_forget's scripts use their own.
if ! cargo pgrx --version 2>/dev/null | grep -q "0.18.1"; then
    echo "setup: installing cargo-pgrx 0.18.1 (several minutes, once)"
    cargo install cargo-pgrx --version 0.18.1 --locked
fi
if ! grep -q "pg15" "${PGRX_HOME:-$HOME/.pgrx}/config.toml" 2>/dev/null; then
    cargo pgrx init --pg15 "$PG_CONFIG"
fi
