#!/usr/bin/env bash
# config_errors.sh — kbstackd refuses bad configuration the documented way:
# exit status 2, exactly one line on stderr naming the setting, and nothing
# started (no counters file, no EAL runtime directory); a flag wins over a
# bad variable (which is not read). Also --help, and kbstat with no daemon.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/kb.sh"

dir=$(mktemp -d /tmp/kbcfg.XXXXXX)
trap 'rm -rf "$dir"' EXIT
base=(env -i PATH="$PATH" KB_STACK="$dir/kbstackd.sock")
good=(KB_DEV=net_af_packet0,iface=lo KB_IP=198.18.0.1/24)

# refuse NAME EXPECTED_PREFIX ENV_OR_FLAGS...
refuse() {
	local name=$1 want=$2; shift 2
	local envs=() flags=() a err rc lines
	for a in "$@"; do
		case $a in --*) flags+=("$a") ;; *) envs+=("$a") ;; esac
	done
	err=$("${base[@]}" "${good[@]}" "${envs[@]}" "$kbstackd" "${flags[@]}" 2>&1 >/dev/null)
	rc=$?
	lines=$(printf '%s\n' "$err" | grep -c .)
	if [ $rc = 2 ] && [ "$lines" = 1 ] && [[ $err == "kbstackd: $want"* ]] &&
	   [[ $err == *expected* || $err == *cannot* || $err == *unknown* ]] &&
	   [ ! -e "$dir/kbstackd.sock.stats" ]; then
		ok "$name: exit 2, one line: $err"
	else
		bad "$name: rc=$rc lines=$lines stderr='$err'"
	fi
}

refuse "KB_DEV missing"       "KB_DEV is not set"  KB_DEV=
refuse "KB_DEV bad"           "KB_DEV=eth0:"       KB_DEV=eth0
refuse "KB_IP missing prefix" "KB_IP=198.18.0.1:"  KB_IP=198.18.0.1
refuse "KB_IP bad prefix"     "KB_IP=198.18.0.1/33:" KB_IP=198.18.0.1/33
refuse "KB_GW outside subnet" "KB_GW=10.0.0.1:"    KB_GW=10.0.0.1
refuse "KB_GW the stack's own" "KB_GW=198.18.0.1:" KB_GW=198.18.0.1
refuse "KB_MAC multicast"     "KB_MAC=01:00:5e:00:00:01:" KB_MAC=01:00:5e:00:00:01
refuse "KB_CORE not a number" "KB_CORE=one:"       KB_CORE=one
refuse "KB_CORE not allowed"  "KB_CORE=4000:"      KB_CORE=4000
refuse "KB_MBUFS too small"   "KB_MBUFS=100:"      KB_MBUFS=100
refuse "KB_POLL unknown"      "KB_POLL=spin:"      KB_POLL=spin
refuse "KB_STACK relative"    "KB_STACK=run/x:"    KB_STACK=run/x
refuse "KB_EAL too long"      "KB_EAL="            KB_EAL="$(printf 'x%.0s' $(seq 600))"
refuse "--ip flag bad"        "--ip=300.1.1.1/24:" --ip=300.1.1.1/24
refuse "--poll flag bad"      "--poll=fast:"       --poll=fast
refuse "unknown option"       "--frobnicate: unknown option" --frobnicate
# A flag wins: the bad variable beside it is not read, so what is refused
# is the missing KB_IP (reported after every setting was read).
core=$(awk '/^Cpus_allowed_list/ { split($2, a, "[,-]"); print a[1] }' /proc/self/status)
refuse "--core over KB_CORE=99999" "KB_IP is not set" KB_IP= KB_CORE=99999 --core="$core"
refuse "--mbufs over KB_MBUFS=5"   "KB_IP is not set" KB_IP= KB_MBUFS=5 --mbufs=4095

out=$("$kbstackd" --help)
check "--help exits 0" test $? = 0
KB_MBUFS=5 "$kbstackd" --help >/dev/null 2>&1
check_eq "--help with a bad variable exits 0" "$?" 0
for v in KB_DEV KB_IP KB_GW KB_MAC KB_CORE KB_MBUFS KB_POLL KB_EAL KB_STACK; do
	check "--help documents $v" grep -q "$v" <<<"$out"
done

err=$(KB_STACK="$dir/none.sock" "$kbstat" 2>&1)
check_eq "kbstat with no kbstackd exits 1" "$?" 1
check "kbstat says no kbstackd runs there" grep -q "no kbstackd at KB_STACK=$dir/none.sock" <<<"$err"
"$kbstat" -i 0 >/dev/null 2>&1
check_eq "kbstat -i 0 is bad usage" "$?" 2
finish
