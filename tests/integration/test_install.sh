#!/bin/sh
# SPDX-License-Identifier: MIT
# test_install.sh: `make install DESTDIR=...` lays out binaries, man pages, units, sysusers.d, tmpfiles.d and the settings file, and keeps a changed settings file.
#
# Run by `make check` (also under `make distcheck`, from a read-only
# srcdir): the install directories come from the Makefile through
# AM_TESTS_ENVIRONMENT. Exits 0 when every check passes, 1 on the first
# that fails, 77 when run outside `make check`.
set -u

if [ -z "${RINGFLOW_BUILDDIR:-}" ] || [ -z "${RF_BINDIR:-}" ]; then
        echo "SKIP: run by make check (RINGFLOW_BUILDDIR, RF_BINDIR unset)"
        exit 77
fi
B=$RINGFLOW_BUILDDIR
S=$RINGFLOW_SRCDIR
tmp=$(mktemp -d "${TMPDIR:-/tmp}/rf-install.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
D=$tmp/root
CONF=$D$RF_SYSCONFDIR/ringflow/ringflow.conf
checks=0

fail() {
        echo "FAIL: $*" >&2
        exit 1
}
ok() {
        checks=$((checks + 1))
        echo "ok $checks - $*"
}
# make from inside make check: the outer make's jobserver is not ours.
run_make() {
        env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$B" --no-print-directory "$@" \
                >"$tmp/make.log" 2>&1 || { cat "$tmp/make.log"; fail "make $*"; }
}

run_make install DESTDIR="$D"
ok "make install DESTDIR=$D"

# Every binary of this tree, the later stages as soon as their folders exist.
bins="ringflow-ingest ringflow-store ringstat ringflow-gen"
[ -d "$S/stages/supervise" ] && bins="$bins ringflowd"
[ -d "$S/stages/process" ] && bins="$bins ringflow-process"
[ -d "$S/stages/api" ] && bins="$bins ringflow-api"
for b in $bins; do
        p=$D$RF_BINDIR/$b
        [ -x "$p" ] || fail "$p: not installed or not executable"
        # The stages read settings: the installed file, not the host's /etc one.
        case $b in
        ringstat | ringflow-gen) v=$("$p" --version) ;;
        *) v=$("$p" --config "$CONF" --version) ;;
        esac || fail "$p --version failed"
        case $v in
        "$b (ringflow) "*) ;;
        *) fail "$p --version printed \"$v\"" ;;
        esac
done
ok "binaries installed and answer --version: $bins"

# Each installed binary has its man page, whatever its name.
n=0
for p in "$D$RF_BINDIR"/*; do
        b=${p##*/}
        [ -f "$D$RF_MANDIR/man1/$b.1" ] || [ -f "$D$RF_MANDIR/man8/$b.8" ] ||
                fail "$b is installed without a man page in $D$RF_MANDIR"
        n=$((n + 1))
done
[ "$n" -ge 4 ] || fail "only $n binaries in $D$RF_BINDIR"
ok "all $n installed binaries have a man page"

unit=$D$RF_UNITDIR/ringflow.service
[ -f "$unit" ] || fail "$unit not installed"
[ -f "$D$RF_UNITDIR/ringflow-ingest.socket" ] || fail "ringflow-ingest.socket not installed"
grep -qx "ExecStart=$RF_BINDIR/ringflowd --config $RF_SYSCONFDIR/ringflow/ringflow.conf" "$unit" ||
        fail "$unit: ExecStart is not $RF_BINDIR/ringflowd with the installed settings file"
if grep -n '@[a-z_]*@' "$unit"; then
        fail "$unit: a placeholder was not filled in"
fi
grep -qx "ListenFIFO=/run/ringflow/ingest.fifo" "$D$RF_UNITDIR/ringflow-ingest.socket" ||
        fail "the socket unit does not listen on /run/ringflow/ingest.fifo"
ok "units in $RF_UNITDIR, ExecStart=$RF_BINDIR/ringflowd"

# Every man page the units point at is installed (ringflowd's once it is here).
for ref in $(sed -n 's/^Documentation=//p' "$D$RF_UNITDIR"/ringflow*.s*); do
        page=${ref#man:}
        name=${page%%(*}
        sec=${page#*(}
        sec=${sec%)}
        if [ ! -f "$D$RF_MANDIR/man$sec/$name.$sec" ]; then
                [ "$name" = ringflowd ] && [ ! -d "$S/stages/supervise" ] && continue
                fail "units name $ref, not installed"
        fi
done
ok "the man pages the units name are installed"

cmp -s "$S/systemd/ringflow.sysusers" "$D$RF_SYSUSERSDIR/ringflow.conf" ||
        fail "$RF_SYSUSERSDIR/ringflow.conf missing or not the shipped one"
cmp -s "$S/systemd/ringflow.tmpfiles" "$D$RF_TMPFILESDIR/ringflow.conf" ||
        fail "$RF_TMPFILESDIR/ringflow.conf missing or not the shipped one"
ok "sysusers.d and tmpfiles.d files installed as ringflow.conf"

# The settings file: every key there, commented out, with its default.
cmp -s "$B/systemd/ringflow.conf" "$CONF" || fail "$CONF missing or not the shipped one"
store=$D$RF_BINDIR/ringflow-store
"$store" --config /dev/null --print-config | sed 1d >"$tmp/defaults" || fail "--print-config"
"$store" --config "$CONF" --print-config | sed 1d >"$tmp/shipped" ||
        fail "ringflow-store does not accept the shipped $CONF"
cmp -s "$tmp/defaults" "$tmp/shipped" || fail "the shipped settings file changes a setting"
sed -n 's/^\([a-z_]*\) = .*/\1/p' "$tmp/defaults" >"$tmp/keys"
while read -r k; do
        grep -Eq "^;$k =( |\$)" "$CONF" || fail "$CONF does not show key $k (as \";$k = DEFAULT\")"
done <"$tmp/keys"
sed 's/^;\([a-z_]* =\)/\1/' "$CONF" >"$tmp/uncommented.conf"
"$store" --config "$tmp/uncommented.conf" --print-config | sed 1d >"$tmp/uncommented" ||
        fail "$CONF with its keys uncommented is refused"
diff "$tmp/defaults" "$tmp/uncommented" || fail "a key in $CONF shows a value that is not its default"
ok "$RF_SYSCONFDIR/ringflow/ringflow.conf shows all $(wc -l <"$tmp/keys") keys with their defaults"

# The commented-out window example is a valid named section.
sed -n '/^; \[window /,$s/^; \{0,1\}//p' "$CONF" >"$tmp/window.conf"
"$store" --config "$tmp/window.conf" --print-config >"$tmp/window.out" ||
        fail "the window example in $CONF does not parse"
grep -q '^\[window clicks_per_minute\]' "$tmp/window.out" || fail "the window example is not read"
ok "the window example parses once uncommented"

# The dashboard's files, when the tree has them, are installed by name.
if [ -d "$S/ui" ]; then
        for f in $(cd "$S/ui" && find . -type f -not -path "./node_modules/*" -not -name "package*.json"); do
                [ -n "$(find "$D$RF_PREFIX" -path "*/${f#./}" -type f)" ] ||
                        fail "ui file ${f#./} not installed under $RF_PREFIX"
        done
        ok "ui files installed"
fi

# A changed settings file survives a reinstall; the new default goes beside it.
sed 's/^;log_level = info$/log_level = debug/' "$B/systemd/ringflow.conf" >"$CONF"
cp "$CONF" "$tmp/changed.conf"
run_make install DESTDIR="$D"
cmp -s "$tmp/changed.conf" "$CONF" || fail "reinstall overwrote the changed $CONF"
cmp -s "$B/systemd/ringflow.conf" "$CONF.dist" || fail "reinstall did not put the default at $CONF.dist"
ok "reinstall keeps a changed ringflow.conf, puts the default in ringflow.conf.dist"

# Uninstall takes everything but the changed settings file.
run_make uninstall DESTDIR="$D"
left=$(cd "$D" && find . -type f)
[ "$left" = ".$RF_SYSCONFDIR/ringflow/ringflow.conf" ] ||
        fail "after uninstall, left in $D: $left"
cmp -s "$tmp/changed.conf" "$CONF" || fail "uninstall touched the changed $CONF"
ok "uninstall removes everything but the changed ringflow.conf"

# An unchanged one goes with the rest.
run_make install DESTDIR="$D"
cp "$B/systemd/ringflow.conf" "$CONF"
run_make uninstall DESTDIR="$D"
left=$(cd "$D" && find . -type f)
[ -z "$left" ] || fail "after uninstall of an unchanged install, left in $D: $left"
ok "uninstall of an unchanged install leaves no file"

echo "PASS: $checks checks"
exit 0
