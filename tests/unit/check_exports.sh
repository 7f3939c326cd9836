#!/bin/sh
# check_exports.sh LIB MAP — fail unless the shared library LIB defines in
# its dynamic symbol table exactly the names listed between "global:" and
# "local:" in the linker version script MAP (libkbpreload.so's export list,
# generated from kbp_syms.h). Anything extra (a kbp_* internal, a stray
# helper) or anything missing is printed and fails the check, and so does a
# list without the names kb must have (close, syscall, … below), or a call
# of syscall() by name from inside the library.
set -eu

lib=${1:?usage: check_exports.sh LIB MAP}
map=${2:?usage: check_exports.sh LIB MAP}
[ -r "$lib" ] || { echo "check_exports: cannot read $lib" >&2; exit 1; }
[ -r "$map" ] || { echo "check_exports: cannot read $map" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Names of the version script: words between "global:" and "local:".
tr ';' '\n' <"$map" | awk '
	/global:/ { on = 1; sub(/.*global:/, "") }
	/local:/  { on = 0 }
	on { gsub(/[ \t{}]/, ""); if ($0 != "") print }
' | sort -u >"$tmp/want"

# Defined dynamic symbols, without any @VERSION suffix.
"${NM:-nm}" -D --defined-only "$lib" >"$tmp/nm"
awk 'NF >= 2 { print $NF }' "$tmp/nm" | sed 's/@.*//' | sort -u >"$tmp/have"

nwant=$(wc -l <"$tmp/want")
nhave=$(wc -l <"$tmp/have")
if [ "$nwant" -eq 0 ]; then
	echo "check_exports: no names between global: and local: in $map" >&2
	exit 1
fi

status=0
# Names whose absence would let a program reach kb's sockets around kb
# without a word: closes and duplications (the fd table would go stale),
# syscall() (libuv's syscall(SYS_close, fd)), sendmsg (SCM_RIGHTS).
for name in close close_range dup dup2 dup3 fcntl syscall sendmsg; do
	if ! grep -qx "$name" "$tmp/want"; then
		echo "check_exports: $map does not list $name" >&2
		status=1
	fi
done
# kb's own raw system calls use libc_syscall: a call of syscall by name
# from inside the library would go through kb's interposed one.
if "${OBJDUMP:-objdump}" -d "$lib" | grep -qE '(call|jmp).*<syscall@plt>'; then
	echo "check_exports: $lib calls syscall() by name (use libc_syscall):" >&2
	"${OBJDUMP:-objdump}" -d "$lib" | grep -E '(call|jmp).*<syscall@plt>|>:$' | grep -v '@plt>:$' |
		grep -B1 'syscall@plt' | sed 's/^/  /' >&2
	status=1
fi
extra=$(comm -13 "$tmp/want" "$tmp/have")
missing=$(comm -23 "$tmp/want" "$tmp/have")
if [ -n "$extra" ]; then
	echo "check_exports: $lib exports symbols not in $map:" >&2
	echo "$extra" | sed 's/^/  + /' >&2
	status=1
fi
if [ -n "$missing" ]; then
	echo "check_exports: $lib does not define symbols listed in $map:" >&2
	echo "$missing" | sed 's/^/  - /' >&2
	status=1
fi
[ "$status" -eq 0 ] && echo "check_exports: $nhave symbols, exactly the $nwant of the export list"
exit "$status"
