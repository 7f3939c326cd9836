# tests/lib/serve.sh — a server under the preload in the test bed's server
# namespace and kernel clients in its client namespace, for the scripts
# that run one server program through scenarios (fork.sh, around.sh).
# Sources kb.sh. The script sets port (KB_ACCEL=listen:$port); the
# server's output goes to $srvlog; serve_cleanup, from the script's
# test_cleanup, kills what is in pids.

. "$(dirname "${BASH_SOURCE[0]}")/kb.sh"
srvlog=$(mktemp)
pids=()
serve_cleanup() {
	local p
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
	rm -f "$srvlog"
}

cx() { ip netns exec "$KB_TB_CNS" taskset -c 0 "$@"; }
# serve_cmd CMD...: CMD under the preload in the server namespace, in the
# background; its pid in $srv, added to the pids cleanup kills.
serve_cmd() {
	: >"$srvlog"
	ip netns exec "$KB_TB_SNS" env KB_STACK="$stack" KB_ACCEL="listen:$port" \
		KB_LOG="${KBLOG:-1}" LD_PRELOAD="$lib" taskset -c 0 "$@" >"$srvlog" 2>&1 &
	srv=$!
	pids+=("$srv")
}
# ready [WORD]: the server said a line starting with WORD (ready) within 10 s
ready() { wait_for 10 grep -q "^${1:-ready}" "$srvlog"; }
num() { [[ $1 =~ ^[0-9]+$ ]]; }
# at_least STACK NAME N: kbstat counter NAME is N or more now
at_least() { local v; v=$(kbstat_of "$1" "$2"); num "$v" && [ "$v" -ge "$3" ]; }
# stop PID...: kill and wait; kbstackd then holds nothing for them.
stop() {
	local p
	for p in "$@"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	wait_for 5 sh -c "for p in $*; do kill -0 \$p 2>/dev/null && exit 1; done; exit 0"
}
