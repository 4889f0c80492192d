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

# The example applications (examples/apps) and their test suites need the
# real client libraries: psycopg 3 in a virtualenv, node-postgres by npm ci.
# Each is installed again only when its pinned list changed.
apps="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/examples/apps"
need=""
command -v python3 >/dev/null || need="$need python3"
python3 -c 'import ensurepip, venv' 2>/dev/null || need="$need python3-venv"
command -v node >/dev/null || need="$need nodejs"
command -v npm >/dev/null || need="$need npm"
if [ -n "$need" ]; then
    echo "setup: installing$need"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
fi
venv="$apps/python/.venv"
if ! cmp -s "$apps/python/requirements.txt" "$venv/requirements.installed" 2>/dev/null \
    || ! "$venv/bin/python" -c 'import psycopg' 2>/dev/null; then
    echo "setup: installing psycopg into examples/apps/python/.venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$apps/python/requirements.txt"
    cp "$apps/python/requirements.txt" "$venv/requirements.installed"
fi
modules="$apps/node/node_modules"
if ! cmp -s "$apps/node/package-lock.json" "$modules/.package-lock.installed" 2>/dev/null; then
    echo "setup: npm ci in examples/apps/node"
    (cd "$apps/node" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    cp "$apps/node/package-lock.json" "$modules/.package-lock.installed"
fi
