#!/bin/bash
# The journal message catalog against the daemon: every MID_* of daemon/journal.h has exactly one
# entry in systemd/tcpedud.catalog and every entry names one of them; each entry has a Subject,
# Defined-By: tcpedu, a Documentation line and some text; every @FIELD@ it shows is a field the
# daemon logs; and journalctl itself parses the file (into a catalog database under a temporary
# --root, so nothing outside it is touched).
# Usage: catalog-check.sh SOURCE_DIR
set -uo pipefail

src=${1:?usage: catalog-check.sh SOURCE_DIR}
header=$src/daemon/journal.h
catalog=$src/systemd/tcpedud.catalog
failures=0

fail() {
        echo "FAIL: $*"
        failures=$((failures + 1))
}

ids_in_header=$(sed -n 's/^#define MID_[A-Z_]* "\([0-9a-f]\{32\}\)".*/\1/p' "$header" | sort)
ids_in_catalog=$(sed -n 's/^-- \([0-9a-f]\{32\}\)$/\1/p' "$catalog" | sort)

[ -n "$ids_in_header" ] || fail "no MID_* definitions found in $header"
n_defines=$(grep -c '^#define MID_' "$header")
[ "$n_defines" -eq "$(echo "$ids_in_header" | wc -l)" ] || fail "a MID_* in $header is not 32 lowercase hex digits"
dups=$(echo "$ids_in_header" | uniq -d)
[ -z "$dups" ] || fail "MESSAGE_IDs defined twice in $header: $dups"
dups=$(echo "$ids_in_catalog" | uniq -d)
[ -z "$dups" ] || fail "MESSAGE_IDs with two catalog entries: $dups"
bad=$(grep -n '^--' "$catalog" | grep -v -E '^[0-9]+:-- [0-9a-f]{32}$')
[ -z "$bad" ] || fail "catalog lines beginning with -- that are not an entry header: $bad"

# (here-strings, not echo | grep -q: with pipefail, grep -q quitting early fails the pipeline by SIGPIPE)
for id in $ids_in_header; do
        grep -qx "$id" <<<"$ids_in_catalog" || fail "$(grep "\"$id\"" "$header" | awk '{print $2}') ($id) has no catalog entry"
done
for id in $ids_in_catalog; do
        grep -qx "$id" <<<"$ids_in_header" || fail "catalog entry $id is no MID_* of $header"
done

# Each entry: header lines up to the first empty line, then text.
awk -v file="$catalog" '
function check() {
        if (id == "")
                return
        if (!subject) { print "FAIL: entry " id " has no Subject:"; bad++ }
        if (!defined) { print "FAIL: entry " id " lacks Defined-By: tcpedu"; bad++ }
        if (!doc) { print "FAIL: entry " id " has no Documentation: man:..."; bad++ }
        if (text == 0) { print "FAIL: entry " id " has no text"; bad++ }
}
/^-- / { check(); id = $2; inheader = 1; subject = defined = doc = text = 0; next }
id == "" { next }
inheader && /^$/ { inheader = 0; next }
inheader && /^Subject: ./ { subject = 1; next }
inheader && /^Defined-By: tcpedu$/ { defined = 1; next }
inheader && /^Documentation: man:[a-z.]+\([0-9]\)$/ { doc = 1; next }
inheader { print "FAIL: entry " id ": unexpected header line: " $0; bad++; next }
/[^ ]/ { text++ }
END { check(); exit bad > 0 }
' "$catalog" || failures=$((failures + 1))

# journalctl -x replaces @FIELD@ by the entry's field, or prints the name when it is absent.
for field in $(grep -v "^#" "$catalog" | grep -o "@[A-Z_]*@" | tr -d @ | sort -u); do
        grep -q "\"$field\"" "$src"/daemon/*.c || fail "the catalog shows @$field@, a field the daemon never logs"
done

if command -v journalctl >/dev/null; then
        root=$(mktemp -d)
        trap 'rm -rf "$root"' EXIT
        mkdir -p "$root/usr/lib/systemd/catalog"
        cp "$catalog" "$root/usr/lib/systemd/catalog/tcpedud.catalog"
        if ! out=$(journalctl --root="$root" --update-catalog 2>&1) || [ -n "$out" ]; then
                fail "journalctl --update-catalog: ${out:-failed}"
        fi
        listed=$(journalctl --root="$root" --list-catalog 2>&1 | awk '{print $1}' | sort)
        [ "$listed" = "$ids_in_catalog" ] || fail "journalctl --list-catalog does not list exactly the catalog's entries: $listed"
        for id in $ids_in_catalog; do
                grep -q '^Subject: ' <<<"$(journalctl --root="$root" --dump-catalog "$id" 2>/dev/null)" ||
                        fail "journalctl --dump-catalog $id shows no Subject"
        done
else
        echo "journalctl not found: the check of journalctl's own parsing is skipped"
fi

if [ "$failures" -gt 0 ]; then
        echo "$failures problems"
        exit 1
fi
echo "catalog OK: $(echo "$ids_in_catalog" | wc -l) entries, one for each MID_* of daemon/journal.h"
