#!/usr/bin/env bash
# The whole test suite: unit tests of the pure planner, #[pg_test]s inside
# PostgreSQL, then the Debian package (scripts/package.sh) installed with
# dpkg -i, and the end-to-end suite (pgrx-tests/) against a throwaway
# PostgreSQL 15 cluster with pg_cron, over real client connections, using the
# packaged files. PGFORGET_PACKAGE=debug packages the debug build that
# scripts/install.sh makes (seconds) instead of the release build users
# install (about 4 minutes from scratch on 2 cores, about 1 after a change);
# PGFORGET_DEB=<file.deb> tests a package built before. The package stays
# installed (scripts/install.sh overwrites its files; dpkg -r would delete
# them, and so the extension).
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
# The upgrade scripts in sql/ are generated: a stale committed one (or one
# not committed at all) fails CI. pgrx orders the install script's functions
# differently from one build to another, so only a difference beyond the
# order of the lines counts.
if [ -n "${CI:-}" ]; then
    stale=""
    for f in $(git diff --name-only -- sql/) $(git ls-files --others --exclude-standard -- sql/); do
        if ! git cat-file -e "HEAD:$f" 2>/dev/null || [ ! -f "$f" ] ||
            ! cmp -s <(git show "HEAD:$f" | sort) <(sort "$f"); then
            stale="$stale $f"
        fi
    done
    if [ -n "$stale" ]; then
        git --no-pager diff --stat -- sql/
        echo "sql/: the committed upgrade scripts are stale:$stale: run bash scripts/install.sh and commit sql/" >&2
        exit 1
    fi
fi

echo "== the Debian package, installed with dpkg -i over what install.sh installed"
# dpkg replaces files that belong to no package without asking, so it goes
# over the files of cargo pgrx install; released versions' files stay (they
# are not in the package). From here on PostgreSQL loads the packaged files.
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
extdir="$($PG_CONFIG --sharedir)/extension"
libdir=$($PG_CONFIG --pkglibdir)
package_flags=()
[ "${PGFORGET_PACKAGE:-release}" = debug ] && package_flags+=(--debug)
# PGFORGET_DEB=<file.deb> tests that package instead of building one.
deb=${PGFORGET_DEB:-$(bash scripts/package.sh "${package_flags[@]}" | tail -n1)}
[ -f "$deb" ] || { echo "package: no package to install (scripts/package.sh failed?)" >&2; exit 1; }
pkg=$(dpkg-deb -f "$deb" Package)
dpkg -i "$deb" > "$LOG.dpkg" 2>&1 || { cat "$LOG.dpkg"; echo "package: dpkg -i $deb failed" >&2; exit 1; }
# A failed check of the package does not stop the suite: it counts as a
# failed test in the closing line.
package_passed=0 package_failed=0
package_fail() { echo "package: FAILED: $* ($deb)" >&2; package_failed=$((package_failed + 1)); }
# Every file PostgreSQL reads for this version is the package's, unchanged:
# the control file, the install script, an upgrade script from each release
# (and any other one to this version), the library.
check_package_files() {
    local files=("$extdir/pg_forget.control" "$extdir/pg_forget--$version.sql" "$libdir/pg_forget-$version.so") f release
    local failed=$package_failed
    while read -r release _; do
        if [ -n "$release" ] && [ "$release" != "$version" ]; then files+=("$extdir/pg_forget--$release--$version.sql"); fi
    done < <(grep -v '^#' scripts/releases)
    for f in "$extdir"/pg_forget--*--"$version".sql; do
        if [ -e "$f" ]; then files+=("$f"); fi
    done
    for f in "${files[@]}"; do
        if [ ! -f "$f" ]; then
            package_fail "$f is missing after dpkg -i"
        elif [ "$(dpkg-query -S "$f" 2>/dev/null)" != "$pkg: $f" ]; then
            package_fail "$f does not belong to $pkg (dpkg -S $f)"
        fi
    done
    dpkg --verify "$pkg" || package_fail "files of $pkg differ from the package (dpkg --verify above)$1"
    if [ "$package_failed" = "$failed" ]; then
        package_passed=$((package_passed + 1))
        echo "package: $pkg $(dpkg-deb -f "$deb" Version) from $deb: the files PostgreSQL reads are its files$1"
    fi
}
check_package_files ""

echo "== end-to-end suite on a cluster at port $PORT"
bash scripts/cluster.sh start "$DATA" "$PORT" "fsync = off" "synchronous_commit = off"
REPLICA_PORT=$((PORT + 1))
bash scripts/cluster.sh replica "$DATA-replica" "$REPLICA_PORT" "$PORT"
trap 'bash scripts/cluster.sh stop "$DATA-replica"; bash scripts/cluster.sh stop "$DATA"' EXIT

# The package in a fresh database: CREATE EXTENSION gives this version and
# loads the packaged library (its C functions are checked against it), and
# every release upgrades to this version through the packaged script.
sql() { psql -h 127.0.0.1 -p "$PORT" -U postgres -X -q -At -v ON_ERROR_STOP=1 "$@" < /dev/null; }
check_db=pg_forget_package_check
loaded_libs="SELECT string_agg(DISTINCT m[1], ' ') FROM regexp_matches(pg_read_file('/proc/self/maps'), '(/\S*pg_forget\S*)', 'g') AS m"
c_libs="SELECT string_agg(DISTINCT probin, ' ') FROM pg_proc WHERE probin IS NOT NULL AND oid IN
    (SELECT objid FROM pg_depend WHERE classid = 'pg_proc'::regclass AND refclassid = 'pg_extension'::regclass AND deptype = 'e'
        AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_forget'))"
fresh_db() { sql -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $check_db" -c "CREATE DATABASE $check_db"; }
fresh_db
expected=$(printf '%s\n%s\n%s' "$version" "$libdir/pg_forget-$version.so" "pg_forget-$version")
if ! got=$(sql -d "$check_db" -c "CREATE EXTENSION pg_forget" -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_forget'" \
    -c "$loaded_libs" -c "$c_libs" 2>&1); then
    package_fail "CREATE EXTENSION pg_forget failed: $got"
elif [ "$got" != "$expected" ]; then
    package_fail "CREATE EXTENSION pg_forget: expected version $version loading $libdir/pg_forget-$version.so, got: $(echo $got)"
else
    package_passed=$((package_passed + 1))
    echo "package: CREATE EXTENSION pg_forget gives $version, loading $libdir/pg_forget-$version.so"
fi
while read -r release _; do
    [ -n "$release" ] && [ "$release" != "$version" ] || continue
    path=$(sql -d "$check_db" -c "SELECT path FROM pg_extension_update_paths('pg_forget') WHERE source = '$release' AND target = '$version'" 2>/dev/null) || path=""
    fresh_db || true
    if [ -z "$path" ]; then
        package_fail "no update path from $release to $version (pg_extension_update_paths)"
    elif ! got=$(sql -d "$check_db" -c "CREATE EXTENSION pg_forget VERSION '$release'" -c "ALTER EXTENSION pg_forget UPDATE" \
        -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_forget'" -c "$c_libs" 2>&1); then
        package_fail "CREATE EXTENSION pg_forget VERSION '$release'; ALTER EXTENSION pg_forget UPDATE failed: $got"
    elif [ "$got" != "$(printf '%s\n%s' "$version" "pg_forget-$version")" ]; then
        package_fail "upgrade from $release: expected version $version with every C function in pg_forget-$version, got: $(echo $got)"
    else
        package_passed=$((package_passed + 1))
        echo "package: $release upgrades to $version ($path)"
    fi
done < <(grep -v '^#' scripts/releases)
sql -d postgres -c "DROP DATABASE $check_db" || true   # (not after a crash)

PGFORGET_REPLICA_PORT=$REPLICA_PORT PGFORGET_PORT=$PORT cargo test --manifest-path pgrx-tests/Cargo.toml --tests --no-fail-fast -- --test-threads 4 2>&1 | tee -a "$LOG"
# Still the packaged files: the suite tested what the package installs.
check_package_files " after the end-to-end suite"
echo "test result: package checks: $package_passed passed; $package_failed failed" | tee -a "$LOG"

# One closing line for the whole suite (every cargo test result line summed).
passed=$(grep -o '[0-9]* passed' "$LOG" | awk '{s += $1} END {print s + 0}')
failed=$(grep -o '[0-9]* failed' "$LOG" | awk '{s += $1} END {print s + 0}')
echo "pg_forget: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
