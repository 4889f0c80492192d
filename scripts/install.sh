#!/usr/bin/env bash
# Builds and installs the current pg_forget into PostgreSQL 15, with an
# upgrade script from every released version (written into sql/ from the
# install script the build generates, and installed beside it).
#   scripts/install.sh [--release]
set -euo pipefail
cd "$(dirname "$0")/.."
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
extdir="$($PG_CONFIG --sharedir)/extension"
cargo pgrx install --pg-config "$PG_CONFIG" "$@" >/dev/null
bash scripts/upgrade-script.sh "$extdir/pg_forget--$version.sql" sql >/dev/null
cp sql/pg_forget--*--"$version".sql "$extdir/"
echo "installed pg_forget $version into $extdir"
