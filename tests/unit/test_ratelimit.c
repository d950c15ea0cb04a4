/*
 * test_ratelimit.c - the write rate limiter (apiserver/reconcile/ratelimit.c)
 * against langop/reconcile/ratelimit.h: burst, qps, deadline, stop.
 *
 * Counting tests use a clock moved by hand and takes with timeout 0; the
 * blocking ones use the real clock over a fraction of a second.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "langop/core/common.h"
#include "langop/reconcile/ratelimit.h"

typedef struct fake_clock {
    _Atomic int64_t now;
} fake_clock_t;

static int64_t fake_now(void *ctx)
{
    return atomic_load(&((fake_clock_t *)ctx)->now);
}

static ratelimit_t *fake_limiter(fake_clock_t *c, double qps, int burst)
{
    ratelimit_options_t o = {.qps = qps, .burst = burst, .now_ms = fake_now, .now_ctx = c};
    return ratelimit_new(&o);
}

/* How many takes with timeout 0 succeed now, trying up to max. */
static int take_all(ratelimit_t *rl, int max)
{
    int n = 0;
    while (n < max && ratelimit_take(rl, 0) == RATELIMIT_OK)
        n++;
    return n;
}

static void test_burst_then_qps(void **state)
{
    (void)state;
    fake_clock_t clock = {5000};
    ratelimit_t *rl = fake_limiter(&clock, 10, 3);
    assert_int_equal(take_all(rl, 100), 3); /* full at start */
    atomic_store(&clock.now, 5099);
    assert_int_equal(take_all(rl, 100), 0);
    atomic_store(&clock.now, 5100);         /* one token each 100 ms */
    assert_int_equal(take_all(rl, 100), 1);
    atomic_store(&clock.now, 5350);
    assert_int_equal(take_all(rl, 100), 2);
    atomic_store(&clock.now, 60000);        /* a long pause saves up burst, no more */
    assert_int_equal(take_all(rl, 100), 3);
    assert_true(ratelimit_tokens(rl) < 1.0);
    ratelimit_free(rl);
}

/*
 * Over 10 s of trying every millisecond, exactly burst + qps * 10 takes
 * succeed: a token every 100 ms, none lost to rounding.
 */
static void test_window_exact_count(void **state)
{
    (void)state;
    fake_clock_t clock = {0};
    ratelimit_t *rl = fake_limiter(&clock, 10, 5);
    int total = 0, first = take_all(rl, 100);
    total += first;
    for (int64_t t = 1; t <= 10000; t++) {
        atomic_store(&clock.now, t);
        total += take_all(rl, 100);
    }
    assert_int_equal(first, 5);
    assert_int_equal(total, 5 + 100);
    ratelimit_free(rl);

    /* an odd rate: 3 qps for 30 s gives 90 tokens after the burst of 2 */
    clock.now = 0;
    rl = fake_limiter(&clock, 3, 2);
    total = take_all(rl, 100);
    for (int64_t t = 1; t <= 30000; t++) {
        atomic_store(&clock.now, t);
        total += take_all(rl, 100);
    }
    assert_int_equal(total, 2 + 90);
    ratelimit_free(rl);
}

/* A take that cannot have its token within the timeout fails at once and reserves nothing. */
static void test_deadline_refused_at_once(void **state)
{
    (void)state;
    fake_clock_t clock = {0};
    ratelimit_t *rl = fake_limiter(&clock, 10, 1);
    assert_int_equal(ratelimit_take(rl, 0), RATELIMIT_OK);
    int64_t t0 = lo_now_ms();
    assert_int_equal(ratelimit_take(rl, 99), RATELIMIT_TIMEOUT); /* the token is 100 ms away */
    assert_int_equal(ratelimit_take(rl, 50), RATELIMIT_TIMEOUT);
    assert_true(lo_now_ms() - t0 < 50);
    atomic_store(&clock.now, 100);
    assert_int_equal(take_all(rl, 10), 1); /* the refusals took nothing */
    ratelimit_free(rl);
}

/* A take allowed to wait reserves its token and sleeps until it comes. */
static void test_take_waits_for_token(void **state)
{
    (void)state;
    fake_clock_t clock = {0};
    ratelimit_t *rl = fake_limiter(&clock, 20, 1);
    assert_int_equal(ratelimit_take(rl, 0), RATELIMIT_OK);
    int64_t t0 = lo_now_ms();
    assert_int_equal(ratelimit_take(rl, 1000), RATELIMIT_OK); /* 50 ms */
    int64_t waited = lo_now_ms() - t0;
    assert_in_range(waited, 49, 2000);
    /* that token was reserved: the next is 100 ms away on the (frozen) clock */
    assert_int_equal(ratelimit_take(rl, 99), RATELIMIT_TIMEOUT);
    assert_true(ratelimit_tokens(rl) <= -1.0 + 1e-9);
    ratelimit_free(rl);
}

/*
 * Never early: at 3 qps a token is 333.333 ms away, and a take that waited
 * for it returns only once the bucket holds it (sleeping 333 ms would not).
 */
static void test_token_never_early(void **state)
{
    (void)state;
    ratelimit_options_t o = {.qps = 3, .burst = 1};
    ratelimit_t *rl = ratelimit_new(&o);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ratelimit_take(rl, -1), RATELIMIT_OK);
        assert_true(ratelimit_tokens(rl) >= 0.0);
    }
    ratelimit_free(rl);
}

typedef struct taker {
    ratelimit_t *rl;
    int n;
    int64_t timeout_ms;
    _Atomic int ok, other;
} taker_t;

static void *taker_main(void *arg)
{
    taker_t *t = arg;
    for (int i = 0; i < t->n; i++) {
        if (ratelimit_take(t->rl, t->timeout_ms) == RATELIMIT_OK)
            atomic_fetch_add(&t->ok, 1);
        else
            atomic_fetch_add(&t->other, 1);
    }
    return NULL;
}

/*
 * Real time: 4 threads take 10 tokens each at 200 qps, burst 5. The 35
 * beyond the burst need 175 ms; all must succeed, none early.
 */
static void test_real_time_rate(void **state)
{
    (void)state;
    ratelimit_options_t o = {.qps = 200, .burst = 5};
    ratelimit_t *rl = ratelimit_new(&o);
    taker_t tk = {.rl = rl, .n = 10, .timeout_ms = -1};
    pthread_t th[4];
    int64_t t0 = lo_now_ms();
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, taker_main, &tk), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    int64_t elapsed = lo_now_ms() - t0;
    assert_int_equal(atomic_load(&tk.ok), 40);
    assert_int_equal(atomic_load(&tk.other), 0);
    assert_in_range(elapsed, 174, 3000);
    ratelimit_free(rl);
}

static void test_stop_wakes_takers(void **state)
{
    (void)state;
    ratelimit_options_t o = {.qps = 1, .burst = 1};
    ratelimit_t *rl = ratelimit_new(&o);
    assert_int_equal(ratelimit_take(rl, 0), RATELIMIT_OK);
    taker_t tk = {.rl = rl, .n = 1, .timeout_ms = -1}; /* 1 s and 2 s away */
    pthread_t th[2];
    int64_t t0 = lo_now_ms();
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, taker_main, &tk), 0);
    usleep(30000);
    ratelimit_stop(rl);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    assert_true(lo_now_ms() - t0 < 900);
    assert_int_equal(atomic_load(&tk.ok), 0);
    assert_int_equal(atomic_load(&tk.other), 2);
    assert_int_equal(ratelimit_take(rl, 0), RATELIMIT_STOPPED);
    assert_int_equal(ratelimit_take(rl, -1), RATELIMIT_STOPPED);
    ratelimit_free(rl);
}

static void test_no_limit(void **state)
{
    (void)state;
    fake_clock_t clock = {0};
    ratelimit_t *rl = fake_limiter(&clock, 0, 0);
    assert_int_equal(take_all(rl, 100000), 100000);
    ratelimit_free(rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_qps),
        cmocka_unit_test(test_window_exact_count),
        cmocka_unit_test(test_deadline_refused_at_once),
        cmocka_unit_test(test_take_waits_for_token),
        cmocka_unit_test(test_token_never_early),
        cmocka_unit_test(test_real_time_rate),
        cmocka_unit_test(test_stop_wakes_takers),
        cmocka_unit_test(test_no_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
