/*
 * kbtest_early.h — what kbtest_early_lib exports to its program.
 */
#ifndef KBTEST_EARLY_H
#define KBTEST_EARLY_H

/* Call every symbol libkbpreload.so interposes; failed checks (each said on stderr). */
int kbtest_early_run(const char *where);

/* Stop the constructor's thread; failed checks of everything so far. */
int kbtest_early_finish(void);

#endif /* KBTEST_EARLY_H */
