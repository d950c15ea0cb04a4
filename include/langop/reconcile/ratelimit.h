/*
 * ratelimit.h - a token bucket that bounds how fast the reconcile thread
 * writes to kube-apiserver: qps tokens a second, at most burst of them
 * saved up. Every write takes one token first.
 *
 * What it promises: over any window of w seconds, at most
 * burst + qps * w takes succeed (1/qps rounded to the microsecond). Takes are served in the order they ask:
 * a take that must wait reserves the next token to come (the bucket may go
 * below zero) and sleeps until its time, so a steady stream of callers
 * cannot starve an earlier one.
 *
 * Deadline. A take that would have to wait longer than its timeout fails
 * at once (RATELIMIT_TIMEOUT) and reserves nothing: a caller learns now
 * that its deadline cannot be met, rather than when it has passed.
 *
 * Stop. ratelimit_stop() wakes every waiting take, which returns
 * RATELIMIT_STOPPED, as does every take after it: a reconciler that lost
 * its lease must not write once more because a token came.
 *
 * Clocks. Tokens accrue by options.now_ms (lo_now_ms by default), so a
 * test can move time by hand; a take that must wait sleeps the difference
 * in real time.
 *
 * Threads: every function may be called from any thread at once, except
 * ratelimit_free(), once nobody else calls.
 */
#ifndef LANGOP_RECONCILE_RATELIMIT_H
#define LANGOP_RECONCILE_RATELIMIT_H

#include <stdint.h>

/* Return codes of ratelimit_take(). */
#define RATELIMIT_OK 0
#define RATELIMIT_TIMEOUT (-1) /* no token within the timeout; nothing reserved */
#define RATELIMIT_STOPPED (-2) /* ratelimit_stop() was called */

typedef struct ratelimit_options {
    double qps;                   /* tokens a second; <= 0: no limit, takes never wait */
    int burst;                    /* bucket size, full at start; < 1: 1 */
    int64_t (*now_ms)(void *ctx); /* monotonic milliseconds; NULL: lo_now_ms */
    void *now_ctx;                /* passed to now_ms */
} ratelimit_options_t;

typedef struct ratelimit ratelimit_t;

/** A full bucket. opts is copied. */
ratelimit_t *ratelimit_new(const ratelimit_options_t *opts);
void ratelimit_free(ratelimit_t *rl);

/**
 * Takes one token, waiting for it at most timeout_ms (real time; 0: only
 * a token there now; < 0: without bound). Returns RATELIMIT_OK,
 * RATELIMIT_TIMEOUT (at once, when the wait would be longer) or
 * RATELIMIT_STOPPED.
 */
int ratelimit_take(ratelimit_t *rl, int64_t timeout_ms);

/** Stops the limiter for good: see "Stop". */
void ratelimit_stop(ratelimit_t *rl);

/** Tokens in the bucket now (below zero while takes wait for reserved ones). */
double ratelimit_tokens(ratelimit_t *rl);

#endif
