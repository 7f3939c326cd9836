/*
 * pipe_pingpong — a syscall-heavy program with no socket at all: two
 * processes bounce one byte over two pipes with read() and write(). Under
 * LD_PRELOAD=libkbpreload.so every call goes through the interposed symbols
 * and straight on to libc; comparing the two runs gives the library's cost
 * on calls it does not accelerate.
 *
 *   pipe_pingpong [ROUND_TRIPS]   prints "ns_per_round_trip N"
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 200000, i;
	int ab[2], ba[2];
	struct timespec t0, t1;
	char c = 'x';
	pid_t pid;

	if (n <= 0 || pipe(ab) || pipe(ba))
		return 2;
	pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		for (i = 0; i < n; i++)
			if (read(ab[0], &c, 1) != 1 || write(ba[1], &c, 1) != 1)
				_exit(1);
		_exit(0);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < n; i++)
		if (write(ab[1], &c, 1) != 1 || read(ba[0], &c, 1) != 1)
			return 1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	waitpid(pid, NULL, 0);
	printf("ns_per_round_trip %.1f\n",
	       ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / (double)n);
	return 0;
}
