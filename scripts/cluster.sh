#!/usr/bin/env bash
# Starts (or restarts) a throwaway PostgreSQL 15 cluster for pg_forget's demo,
# tests and benchmarks, as the postgres OS user (root may not run postgres).
#   scripts/cluster.sh start <dir> <port> [extra postgresql.conf lines...]
#   scripts/cluster.sh replica <dir> <port> <primary-port>
#   scripts/cluster.sh stop  <dir>
set -euo pipefail
BIN=/usr/lib/postgresql/15/bin
cmd=$1 dir=$2
case "$cmd" in
start)
    port=$3; shift 3
    if [ -f "$dir/postmaster.pid" ]; then
        runuser -u postgres -- "$BIN/pg_ctl" -D "$dir" -m fast stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    mkdir -p "$dir" && chown postgres:postgres "$dir"
    runuser -u postgres -- "$BIN/initdb" -D "$dir" -A trust -U postgres --no-sync >/dev/null
    {
        echo "port = $port"
        echo "listen_addresses = '127.0.0.1'"
        echo "unix_socket_directories = '/tmp'"
        echo "shared_preload_libraries = 'pg_cron'"
        echo "cron.database_name = 'postgres'"
        echo "cron.use_background_workers = on"
        echo "max_connections = 100"
        for line in "$@"; do echo "$line"; done
    } >> "$dir/postgresql.conf"
    # Without RUST_BACKTRACE the server's errors carry no Rust backtrace.
    runuser -u postgres -- env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE \
        "$BIN/pg_ctl" -D "$dir" -l "$dir/server.log" -w start >/dev/null
    ;;
replica)
    # A streaming replica of the cluster at <primary-port> (pg_basebackup -R).
    port=$3 primary=$4
    if [ -f "$dir/postmaster.pid" ]; then
        runuser -u postgres -- "$BIN/pg_ctl" -D "$dir" -m fast stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    mkdir -p "$dir" && chown postgres:postgres "$dir" && chmod 700 "$dir"
    runuser -u postgres -- "$BIN/pg_basebackup" -h 127.0.0.1 -p "$primary" -U postgres -D "$dir" -R -X stream >/dev/null
    {
        echo "port = $port"
        echo "hot_standby = on"
    } >> "$dir/postgresql.conf"
    rm -f "$dir/postmaster.pid"
    runuser -u postgres -- env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE \
        "$BIN/pg_ctl" -D "$dir" -l "$dir/server.log" -w start >/dev/null
    ;;
stop)
    if [ -f "$dir/postmaster.pid" ]; then
        runuser -u postgres -- "$BIN/pg_ctl" -D "$dir" -m fast stop >/dev/null
    fi
    ;;
*) echo "usage: $0 start|replica|stop <dir> [port] [primary-port]" >&2; exit 2 ;;
esac
