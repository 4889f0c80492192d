#!/usr/bin/env bash
# Builds a Debian package of pg_forget for PostgreSQL 15, for installing
# into an existing cluster (docs/install.md):
#   scripts/package.sh [--debug] [--out-dir <dir>]
# prints the path of the .deb as its last line, by default
#   target/debian/postgresql-15-pg-forget_<version>_<arch>.deb
# (target/debian/debug/ for --debug).
# The package holds what `cargo pgrx install` would put into PostgreSQL 15:
# the library (/usr/lib/postgresql/15/lib/pg_forget-<version>.so), the
# control file, the install script, and an upgrade script to this version
# from every released version (scripts/releases), under
# /usr/share/postgresql/15/extension. Released versions themselves are not in
# it: a database still on one upgrades with ALTER EXTENSION pg_forget UPDATE.
# Release build by default (what users install; cargo pgrx package);
# --debug packages the unoptimized build instead, for tests only: it is the
# build scripts/install.sh makes, so after that it costs seconds where a
# release build costs minutes. Runs scripts/setup.sh first (Debian, as root).
# Upgrading the package keeps the replaced version's library (a file of no
# package then) for the databases not yet updated; see docs/install.md.
set -euo pipefail
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
profile=release
out=
while [ $# -gt 0 ]; do
    case "$1" in
    --debug) profile=debug ;;
    --release) profile=release ;;
    --out-dir) out=${2:?--out-dir needs a directory}; mkdir -p "$out"; out=$(cd "$out" && pwd); shift ;;
    -h|--help) awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; exit 0 ;;
    *) echo "package: unknown argument $1 (usage: $0 [--release|--debug] [--out-dir <dir>])" >&2; exit 2 ;;
    esac
    shift
done
cd "$(dirname "$0")/.."
# A debug package has the same name: keep it apart from the release one.
[ -n "$out" ] || { [ "$profile" = debug ] && out=target/debian/debug || out=target/debian; }
# Everything but the path of the .deb goes to stderr.
bash scripts/setup.sh >&2

extname=pg_forget
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
description=$(sed -n 's/^description = "\(.*\)"/\1/p' Cargo.toml | head -n1)
pgmajor=$("$PG_CONFIG" --version | sed 's/^PostgreSQL \([0-9]*\).*/\1/')
arch=$(dpkg --print-architecture)
name="postgresql-$pgmajor-pg-forget"
libdir=$("$PG_CONFIG" --pkglibdir)
extdir="$("$PG_CONFIG" --sharedir)/extension"
mkdir -p "$out"
out=$(cd "$out" && pwd)
deb="$out/${name}_${version}_${arch}.deb"
root="$out/build/${name}_${version}_${arch}"

echo "package: building pg_forget $version ($profile) for PostgreSQL $pgmajor" >&2
rm -rf "$root"
mkdir -p "$root"
flags=()
[ "$profile" = debug ] && flags+=(--debug)
# cargo pgrx package writes the installed tree below --out-dir: the library,
# the control file (@CARGO_VERSION@ filled in), the install script it
# generates, and every sql/pg_forget--<old>--<new>.sql.
cargo pgrx package --pg-config "$PG_CONFIG" "${flags[@]}" --out-dir "$root" >&2

pkg_lib="$root$libdir"
pkg_ext="$root$extdir"
test -f "$pkg_lib/$extname-$version.so" || { echo "package: no $libdir/$extname-$version.so in the build" >&2; exit 1; }
test -f "$pkg_ext/$extname.control" || { echo "package: no control file in the build" >&2; exit 1; }
test -f "$pkg_ext/$extname--$version.sql" || { echo "package: no install script $extname--$version.sql in the build" >&2; exit 1; }
grep -q "^default_version = '$version'\$" "$pkg_ext/$extname.control" ||
    { echo "package: the control file's default_version is not $version" >&2; exit 1; }

# Upgrade scripts: the ones in sql/ that lead to another version belong to
# no installation of this one (scripts/install.sh installs only those to
# $version); the ones to $version are written again from this build's
# install script, as scripts/install.sh does, so the package is consistent
# even when sql/ is stale (a warning then: commit what install.sh writes).
for f in "$pkg_ext/$extname"--*--*.sql; do
    [ -e "$f" ] || continue
    case "$f" in *"--$version.sql") ;; *) rm -f "$f" ;; esac
done
gen=$(mktemp -d)
trap 'rm -rf "$gen"' EXIT
bash scripts/upgrade-script.sh "$pkg_ext/$extname--$version.sql" "$gen" >/dev/null
for f in "$gen"/*.sql; do
    [ -e "$f" ] || continue
    b=$(basename "$f")
    # pgrx orders the install script's functions differently from one build
    # to another: only a difference beyond the order makes sql/ stale.
    if [ ! -f "sql/$b" ] || ! cmp -s <(sort "$f") <(sort "sql/$b"); then
        echo "package: warning: sql/$b differs from what this build generates (stale: run bash scripts/install.sh and commit sql/); packaging the generated one" >&2
    fi
    cp "$f" "$pkg_ext/$b"
done
# Every released version needs its upgrade script.
grep -v '^#' scripts/releases | while read -r release _; do
    [ -n "$release" ] && [ "$release" != "$version" ] || continue
    test -f "$pkg_ext/$extname--$release--$version.sql" ||
        { echo "package: no upgrade script from $release to $version" >&2; exit 1; }
done

# What Debian packages carry besides the files.
doc="$root/usr/share/doc/$name"
mkdir -p "$doc"
cat > "$doc/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: pg_forget

Files: *
Copyright: the pg_forget authors
License: PostgreSQL
EOF
find "$root" -type d -exec chmod 0755 {} +
find "$root" -type f -exec chmod 0644 {} +
chmod 0755 "$pkg_lib/$extname-$version.so"

# Shared-library dependencies (libc6 and such, with their minimal versions);
# postgres itself provides the server's symbols, so they stay unresolved.
shlibs=""
if command -v dpkg-shlibdeps >/dev/null; then
    shdir=$(mktemp -d)
    mkdir -p "$shdir/debian"
    printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$extname" "$name" > "$shdir/debian/control"
    shlibs=$(cd "$shdir" && dpkg-shlibdeps -O --warnings=0 "$pkg_lib/$extname-$version.so" 2>/dev/null |
        sed -n 's/^shlibs:Depends=//p') || shlibs=""
    rm -rf "$shdir"
fi
depends="postgresql-$pgmajor${shlibs:+, $shlibs}"

origin="from a source tree"
if commit=$(git rev-parse --short HEAD 2>/dev/null); then
    origin="from commit $commit"
    git diff --quiet HEAD -- src sql Cargo.toml pg_forget.control 2>/dev/null || origin="$origin with local changes"
fi
mkdir -p "$root/DEBIAN"
installed_size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<EOF
Package: $name
Version: $version
Architecture: $arch
Maintainer: ${DEBFULLNAME:-pg_forget} <${DEBEMAIL:-pg-forget@localhost}>
Installed-Size: $installed_size
Depends: $depends
Suggests: postgresql-$pgmajor-cron
Section: database
Priority: optional
Description: $description
 pg_forget is a PostgreSQL $pgmajor extension (CREATE EXTENSION pg_forget) for
 the lifecycle of a person's data: eligibility checks, deletion with full
 cascades, anonymization, soft deletion with a recovery window, export,
 automated cleanup and deactivation, with a hash-chained audit trail.
 It needs no shared_preload_libraries entry; its scheduled jobs use pg_cron
 (postgresql-$pgmajor-cron), which does.
 .
 This build: $profile, $origin.
EOF
# Upgrading the package replaces pg_forget-<old>.so with pg_forget-<new>.so,
# but databases still on the old version call the old library until
# ALTER EXTENSION pg_forget UPDATE: the maintainer scripts keep it (as a
# file of no package, removed by hand once no database uses it).
cat > "$root/DEBIAN/preinst" <<SCRIPT
#!/bin/sh
# $name: keep the library of the version being replaced, for the databases
# still on it until ALTER EXTENSION pg_forget UPDATE (the postinst puts it
# back after dpkg removed it with the old version's files).
set -e
if [ "\$1" = upgrade ]; then
    for lib in \$(dpkg-query -L $name 2>/dev/null | grep '^$libdir/$extname-.*\\.so\$' || true); do
        if [ "\$lib" != "$libdir/$extname-$version.so" ] && [ -f "\$lib" ]; then
            cp -p "\$lib" "\$lib.dpkg-keep"
        fi
    done
fi
exit 0
SCRIPT
cat > "$root/DEBIAN/postinst" <<SCRIPT
#!/bin/sh
set -e
if [ "\$1" = configure ]; then
    for keep in $libdir/$extname-*.so.dpkg-keep; do
        [ -f "\$keep" ] || continue
        lib=\${keep%.dpkg-keep}
        if [ -e "\$lib" ]; then rm -f "\$keep"; else mv "\$keep" "\$lib"; fi
    done
fi
exit 0
SCRIPT
cat > "$root/DEBIAN/postrm" <<SCRIPT
#!/bin/sh
set -e
case "\$1" in
abort-install|abort-upgrade) rm -f $libdir/$extname-*.so.dpkg-keep ;;
esac
exit 0
SCRIPT
chmod 0755 "$root/DEBIAN/preinst" "$root/DEBIAN/postinst" "$root/DEBIAN/postrm"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"

# xz as Debian does; gzip -1 for the debug build, whose 80 MB library xz
# takes half a minute to compress.
compress=(-Zxz)
[ "$profile" = debug ] && compress=(-Zgzip -z1)
dpkg-deb --root-owner-group "${compress[@]}" --build "$root" "$deb" >&2
rm -rf "$root"
rmdir "$out/build" 2>/dev/null || true
echo "$deb"
