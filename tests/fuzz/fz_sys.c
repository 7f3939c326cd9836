/*
 * fz_sys.c — lwIP's platform for fuzzing, in place of stack/kbs_sys.c (the
 * fuzz build leaves that file out of kbstack): the same four functions,
 * deterministic. The clock moves only when the input says so; random
 * numbers restart from one seed per input; every connection starts at
 * FZ_ISN, so an input can acknowledge the stack's SYN-ACK. Not for
 * kbstackd: predictable ISNs are what kbs_sys.c exists to prevent.
 */
#include <stdint.h>

#include "lwip/ip_addr.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/sys.h"
#include "lwip/timeouts.h"

#include "kbs_ctx.h"
#include "kbs_hooks.h"

#include "fz.h"

/* lwIP's TCP timer period (lwipopts.h): no step skips a TCP timer run. */
#define FZ_STEP_MS 100

static uint32_t fz_ms;
static uint64_t fz_rand_state;

void kbs_sys_init(void)
{
	fz_ms = 0; /* lwIP's cyclic timers start at multiples of their periods */
	fz_sys_reset();
}

void fz_sys_reset(void)
{
	fz_rand_state = 0x9e3779b97f4a7c15ull;
	tcp_cc_default = TCP_CC_RENO;
}

void fz_set_cc(int bbr)
{
	tcp_cc_default = bbr ? TCP_CC_BBR : TCP_CC_RENO;
}

u32_t sys_now(void)
{
	return fz_ms;
}

u32_t kbs_now_us(void)
{
	return fz_ms * 1000u;
}

uint32_t fz_now(void)
{
	return fz_ms;
}

void fz_clock_advance(uint32_t ms)
{
	while (ms) {
		uint32_t step = ms < FZ_STEP_MS ? ms : FZ_STEP_MS;

		fz_ms += step;
		ms -= step;
		sys_check_timeouts();
		tcp_probe_tmr(); /* as kbstackd's loop: loss probes in us */
		if (fz_ms / KBS_TRIM_MS != (fz_ms - step) / KBS_TRIM_MS) {
			/* kbstackd's ring trimming, as its loop runs it: the
			 * stream checks see a ring trimmed too early (zeros) */
			bool more = kbs_trim_pass(true);

			while (more)
				more = kbs_trim_pass(false);
		}
	}
}

void fz_clock_settle(void)
{
	uint32_t next = (fz_ms / 1000 + 1) * 1000, ticks;

	if (next - fz_ms < 2 * FZ_STEP_MS)
		next += 1000;
	fz_clock_advance(next - fz_ms);
	/* tcp_tmr runs tcp_slowtmr (which counts tcp_ticks) every other call:
	 * call it until the next call is one that does. */
	ticks = tcp_ticks;
	tcp_tmr();
	if (tcp_ticks != ticks)
		tcp_tmr();
}

uint32_t kbs_rand(void)
{
	/* xorshift64* */
	fz_rand_state ^= fz_rand_state >> 12;
	fz_rand_state ^= fz_rand_state << 25;
	fz_rand_state ^= fz_rand_state >> 27;
	return (uint32_t)((fz_rand_state * 0x2545f4914f6cdd1dull) >> 32);
}

u32_t kbs_tcp_isn(const ip_addr_t *local_ip, u16_t local_port,
		  const ip_addr_t *remote_ip, u16_t remote_port)
{
	(void)local_ip;
	(void)local_port;
	(void)remote_ip;
	(void)remote_port;
	return FZ_ISN;
}
