/*
 * kbtest_early — the program over kbtest_early_lib (see there): the library's
 * constructor has already used sockets and files before main; main uses
 * them again, stops the library's thread and exits 0 only if every check
 * passed, saying "kbtest_early: main: ok".
 *
 *   kbtest_early
 */
#include <stdio.h>

#include "kbtest_early.h"

int main(void)
{
	int fails;

	kbtest_early_run("main");
	fails = kbtest_early_finish();
	if (fails) {
		fprintf(stderr, "kbtest_early: %d checks failed\n", fails);
		return 1;
	}
	fprintf(stderr, "kbtest_early: main: ok\n");
	return 0;
}
