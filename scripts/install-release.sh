#!/usr/bin/env bash
# Installs a released version of pg_forget into PostgreSQL 15 exactly as it
# was released: its SQL and its library, built from the commit that released
# it (scripts/releases), so that CREATE EXTENSION pg_forget VERSION '<it>'
# works beside the current version (the upgrade test starts from it).
#   scripts/install-release.sh <version>
# Releases up to 0.1.0 named their library pg_forget (module_pathname); from
# 0.2.0 on every version has its own, pg_forget-<version>. Run it before
# installing the current version: a release's install writes its own
# control file, which the current install then replaces.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$1
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
commit=$(awk -v v="$version" '$1 == v { print $2 }' scripts/releases)
[ -n "$commit" ] || { echo "install-release: $version is not in scripts/releases" >&2; exit 2; }
extdir="$($PG_CONFIG --sharedir)/extension"
libdir="$($PG_CONFIG --pkglibdir)"
stamp="$extdir/pg_forget--$version.commit"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$commit" ] && [ -f "$extdir/pg_forget--$version.sql" ]; then
    echo "install-release: pg_forget $version already installed"
    exit 0
fi
work="$PWD/target/releases/$version"
mkdir -p "$work"
if [ ! -d "$work/src/.git" ] && [ ! -f "$work/src/.git" ]; then
    rm -rf "$work/src"
    git worktree prune
    git worktree add --detach "$work/src" "$commit" >/dev/null
fi
git -C "$work/src" checkout --quiet --detach "$commit"
echo "install-release: building pg_forget $version from $commit"
(cd "$work/src" && CARGO_TARGET_DIR="$work/target" cargo pgrx install --pg-config "$PG_CONFIG" >/dev/null)
if [ "$version" = "0.1.0" ]; then
    # 0.1.0's control file named its library; the current one does not, so
    # its script says where the library is itself.
    sed -i "s|'MODULE_PATHNAME'|'\$libdir/pg_forget'|g" "$extdir/pg_forget--$version.sql"
    test -f "$libdir/pg_forget.so"
fi
echo "$commit" > "$stamp"
echo "install-release: pg_forget $version installed"
