#!/usr/bin/env bash
# tests/integration/ooseq.sh — a peer cannot take kbstackd's packet buffers
# with data it never completes (integration.faults.ooseq). Every segment
# that arrives out of order waits in lwIP's queue in the frame it came in;
# the port has only so many. With a small pool (4095 mbufs, 2048 of them
# posted to the port), a hostile peer (ooseq_peer.py, from an address of
# its own) opens 40 connections to a server under the preload and sends
# 190 one-byte segments beyond a hole on each: 7600 frames, more than the
# pool. kbstackd must keep receiving for everyone — an honest client
# downloads 1 MiB byte-exact, ping is answered — and count what it gave
# back (tcp_ooseq_pruned), with the frames lwIP holds (rx_held) pruned below
# seven eighths of their bound.
. "$(dirname "$0")/../lib/kb.sh"
need_root
www=$(mktemp -d)
test_cleanup() { httpd_down; rm -rf "$www"; }
bed_up --mbufs=4095
head -c 64 /dev/urandom >"$www/f64"
head -c 1048576 /dev/urandom >"$www/f1m"
chmod -R a+rX "$www"
httpd_up "$www"
mac=$(kbstat_mac "$stack")
base=$(kbstat_of "$stack" mbufs_in_use)

out=$(ip netns exec "$KB_TB_CNS" timeout 120 python3 "$src/tests/integration/ooseq_peer.py" \
	"$KB_TB_CIF" "$mac" 8080 40 190 2>&1)
check_eq "the hostile peer: 40 connections opened, 7600 segments sent beyond their holes" \
	"$(tr '\n' ' ' <<<"$out")" "opened 40 sent 7600 "
sleep 0.5
check "kbstackd alive" sh -c "kill -0 $pid 2>/dev/null"
check "an honest client still downloads 1 MiB byte-exact" sh -c \
	"ip netns exec $KB_TB_CNS curl -s --max-time 10 http://198.18.0.1:8080/f1m | cmp -s - $www/f1m"
check "ping still answered" sh -c "ip netns exec $KB_TB_CNS ping -c 3 -i 0.2 -W 2 -q 198.18.0.1 >/dev/null"
pruned=$(kbstat_of "$stack" tcp_ooseq_pruned)
check "out-of-order queues given back under pressure, counted (tcp_ooseq_pruned $pruned)" \
	test "${pruned:-0}" -gt 0
# lwIP may hold (4095 - 2048) / 2 = 1023 received frames; from 7/8 of that
# (889) kbstackd drops queues until it holds 3/4 of it (765).
held_ok() { [ "$(kbstat_of "$stack" rx_held)" -le 889 ]; }
wait_for 3 held_ok
check "lwIP holds at most 7/8 of its bound after the flood ($(kbstat_of "$stack" rx_held) of 1023)" held_ok
now=$(kbstat_of "$stack" mbufs_in_use)
check "mbufs in use within 1023 + 256 of their base ($base before, $now now)" test "$now" -le $((base + 1023 + 256))

# What a connection SACKed is kept through a flood while its hole moves: a
# keeper holds 150 segments beyond its hole (beyond a share of 23), then 12
# new connections send 100 each (with the 767 left above, past the bound),
# then the keeper fills its hole at once. Dropping its SACKed data, as
# kbstackd once did, left Linux senders waiting for retransmission
# timeouts; the first flood's queues, whose holes never moved, go instead.
out=$(ip netns exec "$KB_TB_CNS" env PEER_SPORT=30000 timeout 60 python3 \
	"$src/tests/integration/ooseq_peer.py" "$KB_TB_CIF" "$mac" 8080 12 100 150 2>&1)
check_eq "a second flood: 12 connections opened, 1200 segments sent" \
	"$(grep -v keeper <<<"$out" | tr '\n' ' ')" "opened 12 sent 1200 "
check_eq "the keeper's 150 out-of-order segments all acknowledged once its hole filled" \
	"$(grep keeper <<<"$out")" "keeper acked 151 of 151"
check "kbstackd alive" sh -c "kill -0 $pid 2>/dev/null"
finish
