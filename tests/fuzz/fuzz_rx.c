/*
 * fuzz_rx.c — libFuzzer target: what arrives from the wire, through
 * kbstackd's real receive path (net_ring port → kbs_netif_rx → mbuf wrapped
 * in a pbuf_custom → ethernet_input → lwIP with kb's lwipopts.h and TCP
 * hooks → kbs_tcp.c's callbacks), with an application listening on port
 * FZ_PORT that accepts, reads, echoes and closes, and may also connect
 * out, shut down, write in bulk, set options, or die (fz_app.c).
 *
 * An input is a sequence of records, each
 *
 *   ctl (1 byte) | length (2 bytes, big endian, low 11 bits) | frame
 *
 * ctl bits 0-3: time to let pass before the frame, fz_ms[] (0 to 130 s),
 * lwIP's timers running as it passes; at most FZ_TIME_BUDGET in all per
 * input. ctl bits 4-7, modulo FZ_ACT_COUNT: what the application does
 * after the frame (enum fz_act). A frame shorter than its length takes the
 * rest of the input; length 0 is a record without a frame (time and
 * action only). Length bit 15: connections the record makes (its frame's
 * SYN, its action's connect) use BBR, not Reno (lwIP patch 0026). Length
 * bit 14: the frame only waits in the port's queue (its ctl and bit 15
 * are not used) and goes in one burst with the next record that has a
 * frame (records without one pass time and act meanwhile; a queued SYN
 * takes that record's bit 15), as frames that arrive together do (lwIP
 * patch 0032 puts output off to a burst's end).
 *
 * Between inputs everything is put back: the application closes its
 * sockets, kbstackd resets the context as for a dead application, lwIP
 * forgets every PCB, ARP entry and fragment, and the clock moves on to a
 * whole second. Checked after each input, besides ASan/UBSan: no slot left
 * in use, no mbuf outside the pool, every frame sent well formed.
 *
 * tests/fuzz/gen_corpus.py writes the seeds and regression inputs
 * (tests/fuzz/corpus/rx/).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fz.h"

/* Enough for TIME_WAIT (60 s), FIN_WAIT_2 and SYN_RCVD timeouts and a few
 * retransmission back-offs; bounds the time one input takes. */
#define FZ_TIME_BUDGET (10u * 60 * 1000)
#define FZ_REC_HDR     3
#define FZ_LEN_MASK    0x7ff
#define FZ_LEN_BBR     0x8000
#define FZ_LEN_BURST   0x4000

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_port_init();
	fz_app_init();
	return 0;
}

/* Steps that matter to lwIP's timers: TCP's 100 ms tick and 200 ms RTO
 * unit, the 1 s ARP and reassembly ticks, the initial RTO (3 s), SYN_RCVD
 * and FIN_WAIT_2 timeouts (20 s), TIME_WAIT (60 s), back-offs. */
static const uint32_t fz_ms[16] = {
	0, 1, 10, 50, 100, 200, 500, 1000,
	2000, 3000, 5000, 10000, 20000, 30000, 65000, 130000,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t budget = FZ_TIME_BUDGET;

	fz_sys_reset();
	fz_app_start();
	while (size >= FZ_REC_HDR) {
		uint8_t ctl = data[0];
		unsigned field = (unsigned)(data[1] << 8 | data[2]);
		size_t len = field & FZ_LEN_MASK;
		uint32_t ms = fz_ms[ctl & 0xf];

		data += FZ_REC_HDR;
		size -= FZ_REC_HDR;
		if (len > size)
			len = size;
		if (len && (field & FZ_LEN_BURST)) {
			fz_port_queue(data, len);
			data += len;
			size -= len;
			continue;
		}
		fz_set_cc(field & FZ_LEN_BBR);
		if (ms > budget)
			ms = budget;
		budget -= ms;
		fz_clock_advance(ms);
		if (len)
			fz_port_rx(data, len);
		data += len;
		size -= len;
		fz_stack_turn();
		fz_app_step((enum fz_act)((ctl >> 4) % FZ_ACT_COUNT));
	}
	if (fz_port_drain()) /* frames the last records left queued */
		fz_stack_turn();
	fz_app_stop();
	fz_port_end();
	return 0;
}
