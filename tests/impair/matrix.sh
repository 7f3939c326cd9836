#!/usr/bin/env bash
# tests/impair/matrix.sh — kb over impaired links (integration.impair.matrix).
# A server under kb (tests/impair/xfer.py under the preload) and a kernel
# client on a bed with the impairment stage; for each impairment, applied
# both ways, SIZE bytes down (kb sends) then up (kb receives): byte-exact,
# each connection ended by FIN with nothing reset or aborted, and kbstat's
# recovery counters moved as that impairment must move them.
#   matrix.sh [SIZE]   SIZE in bytes, default 8 MiB; KB_TCP_CC=bbr|reno
#   chooses kbstackd's congestion control (ctest runs both), KB_RING its
#   rings (64k…8m, as kbstackd takes it)
. "$(dirname "$0")/../lib/kb.sh"
need_root
size=${1:-$((8 << 20))}
# Per transfer: far above what kb needs, so a hang fails instead of a slow run.
limit=150

bed_opts=(--impair)
bed_up
# KB_TCP_CC (bbr or reno; unset: the host's) reached kbstackd
if [ -n "${KB_TCP_CC:-}" ]; then
	check "kbstackd uses $KB_TCP_CC (its ready line)" wait_for 5 grep -q "tcp $KB_TCP_CC," "$log"
fi
# KB_RING (64k…8m; unset: 1m) reached kbstackd
case ${KB_RING:-} in
*k) check "kbstackd's rings are $KB_RING (its ready line)" wait_for 5 grep -q ", ${KB_RING%k} KiB rings," "$log" ;;
*m) check "kbstackd's rings are $KB_RING (its ready line)" wait_for 5 grep -q ", $((${KB_RING%m} * 1024)) KiB rings," "$log" ;;
esac
spid=
test_cleanup() { [ -z "$spid" ] || { kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null; }; }
ip netns exec "$KB_TB_SNS" env KB_STACK="$stack" KB_ACCEL=listen:9000 KB_STRICT=1 LD_PRELOAD="$lib" \
	python3 "$src/tests/impair/xfer.py" serve 9000 >"$log.srv" 2>&1 &
spid=$!
wait_for 10 grep -qs ready "$log.srv" || { bad "xfer server did not start: $(cat "$log.srv")"; finish; }
rstats=/run/kb/tb-$KB_TB_ID/impair.stats

declare -A before
snap() { local k v; while read -r k v; do before[$k]=$v; done < <(KB_STACK=$stack "$kbstat" | awk 'NF == 2'); }
# moved NAME: how much a counter grew since snap
moved() { echo $(($(kbstat_of "$stack" "$1") - ${before[$1]:-0})); }
closed_both() { [ "$(moved tcp_closed)" -ge 2 ]; }
relay_sum() { awk -v f="$1" '{ for (i = 2; i < NF; i += 2) if ($i == f) n += $(i + 1) } END { print n + 0 }' "$rstats"; }

# run NAME SPEC CHECKS...: both transfers of $size under SPEC; each CHECK is
# "COUNTER>0" and must hold for the counters' growth over the two.
run() {
	local name=$1 spec=$2 dir t0 out ok=1; shift 2
	"$src/scripts/testbed" impair "$KB_TB_ID" --seed 5 --both "$spec" || { bad "$name: relay"; return; }
	snap
	for dir in get put; do
		t0=$SECONDS
		if out=$(ip netns exec "$KB_TB_CNS" timeout $((limit + 5)) \
			python3 "$src/tests/impair/xfer.py" $dir 198.18.0.1 9000 "$size" $limit 2>&1); then
			ok "$name: $dir $size bytes byte-exact, EOF after them (${out#* } s)"
		else
			bad "$name: $dir: ${out:-timed out} ($((SECONDS - t0)) s)"
		fi
	done
	check "$name: both connections closed by FIN (tcp_closed +$(moved tcp_closed) when checked)" wait_for 10 closed_both
	check_eq "$name: nothing reset or aborted" \
		"$(moved tcp_reset_peer)/$(moved tcp_reset_unread)/$(moved tcp_aborted)" 0/0/0
	# one connection's out-of-order queue (at most 191 frames) is far below
	# the bound on what lwIP holds: nothing of it dropped
	check_eq "$name: no out-of-order segment dropped for the packet pool" "$(moved tcp_ooseq_pruned)" 0
	# every retransmission is counted as a segment sent again
	check "$name: fast retransmits ($(moved tcp_fast_rexmit)) ≤ segments sent again ($(moved tcp_rexmit_segs))" \
		test "$(moved tcp_fast_rexmit)" -le "$(moved tcp_rexmit_segs)"
	check "$name: fast recoveries ($(moved tcp_fast_recovery)) ≤ fast retransmits" \
		test "$(moved tcp_fast_recovery)" -le "$(moved tcp_fast_rexmit)"
	check "$name: loss probes ($(moved tcp_loss_probes)) ≤ fast retransmits (a probe is one)" \
		test "$(moved tcp_loss_probes)" -le "$(moved tcp_fast_rexmit)"
	local c
	for c in "$@"; do
		check "$name: ${c%>0} grew ($(moved "${c%>0}"))" test "$(moved "${c%>0}")" -gt 0
	done
	check_eq "$name: the relay dropped nothing it did not mean to" \
		"$(relay_sum sockdrop)/$(relay_sum qdrop)/$(relay_sum txerr)" 0/0/0
}

run "no impairment" none
# A loss probe is sent on a silence of 2 * srtt + 2 ms, loss or not: on 2
# shared cores the client may be scheduled out holding its socket (its
# ACKs wait), so a clean link may see a few; nothing else is sent again.
check_eq "no impairment: nothing sent again but loss probes" \
	"$(($(moved tcp_rexmit_segs) - $(moved tcp_loss_probes)))" 0
check "no impairment: few loss probes ($(moved tcp_loss_probes), want ≤ 8)" test "$(moved tcp_loss_probes)" -le 8
run "loss 1 %" loss=1 "tcp_rexmit_segs>0" "tcp_rx_ooseq>0"
# Loss probes are asked for where stalls are sure: on the 40 ms reordered
# path. At 10 % loss, 8 MiB under BBR went by once with no stall at all
# (a burst of ACKs answered once, lwIP patch 0032), where Reno probed 51 times.
run "loss 10 %" loss=10 "tcp_rexmit_segs>0" "tcp_fast_recovery>0" "tcp_rx_ooseq>0"
run "duplicate 5 %" dup=5 "tcp_rx_dup>0"
run "corrupt 1 %" corrupt=1 "tcp_rexmit_segs>0" "tcp_rx_ooseq>0"
check "corrupt 1 %: corrupted frames dropped by lwIP's checksums ($(moved lwip_drop_tcp) TCP, $(moved lwip_drop_ip) IP)" \
	test $(($(moved lwip_drop_tcp) + $(moved lwip_drop_ip))) -gt 0
run "delay 20±5 ms, reorder 25 %" delay=20ms,jitter=5ms,reorder=25 "tcp_rx_ooseq>0" "tcp_loss_probes>0"

finish
