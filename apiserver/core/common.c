/*
 * common.c - the error channel, logging, time, identifiers and the
 * out-of-memory policy shared by every module (see langop/common.h).
 */
#include "langop/core/common.h"
#include "langop/core/text.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

int lo_verbosity = 0;

static void log_flush_queued(void);

void lo_fatal(const char *fmt, ...)
{
    log_flush_queued(); /* the lines before the end, before the end */
    va_list ap;
    va_start(ap, fmt);
    fputs("fatal: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

void *lo_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        lo_fatal("out of memory (%zu bytes)", n);
    return p;
}

void *lo_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        lo_fatal("out of memory (%zu x %zu bytes)", n, size);
    return p;
}

void *lo_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        lo_fatal("out of memory (%zu bytes)", n);
    return q;
}

char *lo_strdup(const char *s)
{
    return lo_strndup(s, strlen(s));
}

char *lo_strndup(const char *s, size_t n)
{
    char *p = lo_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *lo_sprintf(const char *fmt, ...)
{
    va_list ap;
    char *out = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&out, fmt, ap);
    va_end(ap);
    if (n < 0)
        lo_fatal("out of memory (lo_sprintf)");
    return out;
}

json_t *lo_json_text(const char *s)
{
    size_t n = strlen(s);
    if (text_utf8_valid(s, n))
        return json_stringn_nocheck(s, n);
    char *valid = text_utf8_repair(s, n);
    json_t *v = json_string_nocheck(valid);
    free(valid);
    return v;
}

void lo_err_clear(lo_err_t *err)
{
    if (err == NULL)
        return;
    json_decref(err->details);
    memset(err, 0, sizeof(*err));
}

void lo_err_set(lo_err_t *err, int code, const char *reason, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lo_err_setv(err, code, reason, fmt, ap);
    va_end(ap);
}

void lo_err_setv(lo_err_t *err, int code, const char *reason, const char *fmt, va_list ap)
{
    if (err == NULL)
        return;
    err->code = code;
    snprintf(err->reason, sizeof(err->reason), "%s", reason ? reason : "");
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    /* messages quote what clients sent, and snprintf may cut a character in two */
    text_utf8_repair_in_place(err->reason, sizeof(err->reason));
    text_utf8_repair_in_place(err->message, sizeof(err->message));
}

void lo_err_set_details(lo_err_t *err, json_t *details)
{
    if (err == NULL) {
        json_decref(details);
        return;
    }
    json_decref(err->details);
    err->details = details;
}

void lo_err_add_cause(lo_err_t *err, const char *reason, const char *message, const char *field)
{
    if (err == NULL)
        return;
    if (err->details == NULL)
        err->details = json_object();
    json_t *causes = json_object_get(err->details, "causes");
    if (!json_is_array(causes)) {
        causes = json_array();
        json_object_set_new(err->details, "causes", causes);
    }
    json_t *cause = json_object();
    if (reason)
        json_object_set_new(cause, "reason", lo_json_text(reason));
    if (message)
        json_object_set_new(cause, "message", lo_json_text(message));
    if (field)
        json_object_set_new(cause, "field", lo_json_text(field));
    json_array_append_new(causes, cause);
}

/* ---- logging ---- */

#define LOG_LINE_MAX 4096
#define LOG_QUEUE_MAX (4u * 1024u * 1024u)  /* bytes waiting for the logging thread; beyond, callers write */
/*
 * After a write the logging thread rests this long before it takes the next
 * lines: under load one write (and one wake-up) per interval instead of one
 * per request. A line waits at most this long; shutdown and lo_die flush
 * what is queued (a kill -9 loses at most this interval of lines).
 */
#define LOG_LINGER_NS (2 * 1000 * 1000)

static struct {
    pthread_mutex_t mu;
    pthread_cond_t wake;
    pthread_cond_t drained;    /* a caller waits on it while the queue is full */
    char *buf;                 /* the lines gathered, in order */
    size_t len, cap;
    int running, stopping;
    pthread_t thread;
} logq = {.mu = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER, .drained = PTHREAD_COND_INITIALIZER};

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* stderr is gone: nothing better to do with a log line */
        p += w;
        n -= (size_t)w;
    }
}

static void *log_main(void *arg)
{
    (void)arg;
    char *out = NULL;
    size_t out_cap = 0;
    pthread_mutex_lock(&logq.mu);
    for (;;) {
        while (logq.len == 0 && !logq.stopping)
            pthread_cond_wait(&logq.wake, &logq.mu);
        if (logq.len == 0)
            break;
        /* swap the buffers: callers go on filling while this one is written */
        char *full = logq.buf;
        size_t n = logq.len, cap = logq.cap;
        logq.buf = out;
        logq.cap = out_cap;
        logq.len = 0;
        pthread_cond_broadcast(&logq.drained);
        pthread_mutex_unlock(&logq.mu);
        write_all(full, n);
        out = full;
        out_cap = cap;
        struct timespec linger = {0, LOG_LINGER_NS};
        nanosleep(&linger, NULL);
        pthread_mutex_lock(&logq.mu);
    }
    pthread_mutex_unlock(&logq.mu);
    free(out);
    return NULL;
}

/* Writes what is queued, from the calling thread (a dying process cannot wait for the logging thread). */
static void log_flush_queued(void)
{
    if (pthread_mutex_trylock(&logq.mu) != 0)
        return; /* held by a thread that will not release it now: better no lines than a hang */
    write_all(logq.buf, logq.len);
    logq.len = 0;
    pthread_mutex_unlock(&logq.mu);
}

void lo_log_start(void)
{
    pthread_mutex_lock(&logq.mu);
    if (!logq.running && pthread_create(&logq.thread, NULL, log_main, NULL) == 0) {
        logq.running = 1;
        logq.stopping = 0;
        pthread_setname_np(logq.thread, "log");
    }
    pthread_mutex_unlock(&logq.mu);
}

void lo_log_stop(void)
{
    pthread_mutex_lock(&logq.mu);
    int running = logq.running;
    logq.stopping = 1;
    pthread_cond_signal(&logq.wake);
    pthread_cond_broadcast(&logq.drained);
    pthread_mutex_unlock(&logq.mu);
    if (running)
        pthread_join(logq.thread, NULL);
    pthread_mutex_lock(&logq.mu);
    logq.running = 0;
    free(logq.buf);
    logq.buf = NULL;
    logq.len = logq.cap = 0;
    pthread_mutex_unlock(&logq.mu);
}

/*
 * Queues one line for the logging thread, or writes it when there is none.
 * A full queue (stderr does not take what is written) makes the caller
 * wait rather than write beside the logging thread, which would break the
 * order and, past PIPE_BUF, the lines.
 */
static void log_line(const char *line, size_t n)
{
    pthread_mutex_lock(&logq.mu);
    while (logq.running && !logq.stopping && logq.len > 0 && logq.len + n > LOG_QUEUE_MAX)
        pthread_cond_wait(&logq.drained, &logq.mu);
    if (!logq.running || logq.stopping) {
        pthread_mutex_unlock(&logq.mu);
        write_all(line, n); /* one write per line: lines from different threads do not interleave */
        return;
    }
    if (logq.len + n > logq.cap) {
        logq.cap = logq.cap ? logq.cap * 2 : 64 * 1024;
        while (logq.cap < logq.len + n)
            logq.cap *= 2;
        logq.buf = lo_realloc(logq.buf, logq.cap);
    }
    memcpy(logq.buf + logq.len, line, n);
    if (logq.len == 0)
        pthread_cond_signal(&logq.wake); /* it sleeps only when the queue is empty */
    logq.len += n;
    pthread_mutex_unlock(&logq.mu);
}

/* "I<month><day> <time>.<microseconds> " into out (at least 32 bytes); returns its length. */
static size_t log_head(char *out)
{
    static __thread time_t stamp_at = (time_t)-1; /* the stamp's seconds change once a second */
    static __thread char stamp[32];
    static __thread size_t stamp_len;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != stamp_at) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        stamp_len = strftime(stamp, sizeof(stamp), "%m%d %H:%M:%S", &tm);
        stamp_at = ts.tv_sec;
    }
    size_t n = 0;
    out[n++] = 'I';
    memcpy(out + n, stamp, stamp_len);
    n += stamp_len;
    out[n++] = '.';
    long us = ts.tv_nsec / 1000;
    for (int i = 5; i >= 0; i--, us /= 10)
        out[n + (size_t)i] = (char)('0' + us % 10);
    n += 6;
    out[n++] = ' ';
    return n;
}

/* Queues line[0..head+body), the body cut to what fits, made one line of valid UTF-8. */
static void log_finish(char *line, size_t head)
{
    /* a line may quote a client: one line, valid UTF-8, whatever it sent */
    text_utf8_repair_in_place(line + head, LOG_LINE_MAX - head - 1);
    size_t n = head;
    for (; line[n] != '\0'; n++)
        if ((unsigned char)line[n] < 0x20 || line[n] == 0x7F)
            line[n] = ' ';
    line[n++] = '\n';
    log_line(line, n);
}

void lo_log(int level, const char *fmt, ...)
{
    if (level > lo_verbosity)
        return;
    char line[LOG_LINE_MAX];
    size_t head = log_head(line);
    va_list ap;
    va_start(ap, fmt);
    int body = vsnprintf(line + head, sizeof(line) - head - 1, fmt, ap);
    va_end(ap);
    if (body < 0)
        line[head] = '\0';
    log_finish(line, head);
}

void lo_log_text(int level, const char *text, size_t n)
{
    if (level > lo_verbosity)
        return;
    char line[LOG_LINE_MAX];
    size_t head = log_head(line);
    if (n > sizeof(line) - head - 1)
        n = sizeof(line) - head - 1;
    memcpy(line + head, text, n);
    line[head + n] = '\0';
    log_finish(line, head);
}

void lo_time_rfc3339(char *buf, size_t size)
{
    /* a create asks twice (creationTimestamp, managedFields): gmtime and strftime once a second per thread */
    static __thread time_t cached_at = (time_t)-1;
    static __thread char cached[32];
    time_t now = time(NULL);
    if (now != cached_at) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(cached, sizeof(cached), "%Y-%m-%dT%H:%M:%SZ", &tm);
        cached_at = now;
    }
    if (size == 0)
        return;
    size_t n = strlen(cached);
    n = n < size ? n : size - 1;
    memcpy(buf, cached, n);
    buf[n] = '\0';
}

int lo_time_parse(const char *text, int64_t *unix_seconds)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *end = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm);
    if (end == NULL)
        return -1;
    if (*end == '.') { /* fractional seconds */
        end++;
        while (*end >= '0' && *end <= '9')
            end++;
    }
    long offset = 0;
    if (*end == 'Z' || *end == 'z') {
        end++;
    } else if (*end == '+' || *end == '-') {
        /* exactly "+hh:mm": check every byte before reading it, never past the NUL */
        for (int i = 1; i <= 5; i++) {
            int want_colon = i == 3;
            if (want_colon ? end[i] != ':' : !(end[i] >= '0' && end[i] <= '9'))
                return -1;
        }
        int hh = (end[1] - '0') * 10 + (end[2] - '0');
        int mm = (end[4] - '0') * 10 + (end[5] - '0');
        offset = (hh * 3600L + mm * 60L) * (*end == '-' ? -1 : 1);
        end += 6;
    } else {
        return -1;
    }
    if (*end != '\0')
        return -1;
    *unix_seconds = (int64_t)timegm(&tm) - offset;
    return 0;
}

int64_t lo_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Identifiers (uids, generated names) need to be unique, not secret: a
 * per-thread xoshiro256** seeded once from OpenSSL's generator. Asking
 * OpenSSL for every object cost a getpid() (its fork check) and its DRBG
 * each time, on every create.
 */
static __thread uint64_t rng_state[4];
static __thread int rng_seeded;

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(void)
{
    if (!rng_seeded) {
        do {
            if (RAND_bytes((unsigned char *)rng_state, sizeof(rng_state)) != 1)
                lo_fatal("no randomness available");
        } while ((rng_state[0] | rng_state[1] | rng_state[2] | rng_state[3]) == 0);
        rng_seeded = 1;
    }
    uint64_t *s = rng_state;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

static void random_bytes(unsigned char *buf, size_t n)
{
    for (size_t i = 0; i < n; i += 8) {
        uint64_t r = rng_next();
        for (size_t j = 0; j < 8 && i + j < n; j++)
            buf[i + j] = (unsigned char)(r >> (8 * j));
    }
}

void lo_uuid4(char out[37])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    random_bytes(b, sizeof(b));
    b[6] = (b[6] & 0x0f) | 0x40; /* version 4 */
    b[8] = (b[8] & 0x3f) | 0x80; /* RFC 4122 variant */
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[b[i] >> 4];
        *p++ = hex[b[i] & 15];
    }
    *p = '\0';
}

void lo_random_suffix(char *out, size_t n)
{
    /* apimachinery's util/rand alphabet: no vowels, no confusable digits */
    static const char alphabet[] = "bcdfghjklmnpqrstvwxz2456789";
    unsigned char b[64];
    size_t done = 0;
    while (done < n) {
        random_bytes(b, sizeof(b));
        for (size_t i = 0; i < sizeof(b) && done < n; i++) {
            if (b[i] >= 27 * 9) /* reject to keep the draw uniform */
                continue;
            out[done++] = alphabet[b[i] % 27];
        }
    }
    out[n] = '\0';
}

/* ---- growable strings ---- */

void lo_buf_reserve(lo_buf_t *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1)
        cap *= 2;
    b->data = lo_realloc(b->data, cap);
    b->cap = cap;
}

void lo_buf_put(lo_buf_t *b, const void *s, size_t n)
{
    lo_buf_reserve(b, n);
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void lo_buf_puts(lo_buf_t *b, const char *s)
{
    lo_buf_put(b, s, strlen(s));
}

void lo_buf_char(lo_buf_t *b, char c)
{
    lo_buf_reserve(b, 1);
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}

void lo_buf_printf(lo_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        lo_fatal("vsnprintf failed");
    lo_buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void lo_buf_truncate(lo_buf_t *b, size_t len)
{
    if (b->data && len <= b->len) {
        b->len = len;
        b->data[len] = '\0';
    }
}

const char *lo_buf_str(const lo_buf_t *b)
{
    return b->data ? b->data : "";
}

void lo_real_text(double d, char *buf, size_t size)
{
    for (int precision = 1; precision <= 17; precision++) {
        snprintf(buf, size, "%.*g", precision, d);
        if (strtod(buf, NULL) == d)
            break;
    }
}

void lo_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(data, len, digest);
    for (size_t i = 0; i < sizeof(digest); i++)
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

char *lo_base64_encode(const void *data, size_t len)
{
    size_t out_len = 4 * ((len + 2) / 3);
    char *out = lo_malloc(out_len + 1);
    int n = EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    out[n] = '\0';
    return out;
}

unsigned char *lo_base64_decode(const char *text, size_t *out_len)
{
    size_t len = strlen(text);
    /* normalise: URL-safe alphabet to standard, restore padding */
    char *norm = lo_malloc(len + 4);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c == '-')
            c = '+';
        else if (c == '_')
            c = '/';
        else if (c == '=')
            continue;
        else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
                   c == '/')) {
            free(norm);
            return NULL;
        }
        norm[n++] = c;
    }
    if (n % 4 == 1) {
        free(norm);
        return NULL;
    }
    size_t pad = (4 - n % 4) % 4;
    for (size_t i = 0; i < pad; i++)
        norm[n++] = '=';
    norm[n] = '\0';
    unsigned char *out = lo_malloc(n / 4 * 3 + 1);
    int got = EVP_DecodeBlock(out, (unsigned char *)norm, (int)n);
    free(norm);
    if (got < 0) {
        free(out);
        return NULL;
    }
    *out_len = (size_t)got - pad;
    out[*out_len] = '\0';
    return out;
}
