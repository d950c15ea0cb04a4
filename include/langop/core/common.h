/*
 * common.h - what every module shares: the error channel, logging, time,
 * identifiers and out-of-memory policy.
 *
 * Error channel: functions return 0 (or a non-negative value) on success and
 * a negative value on failure, and fill an optional caller-owned lo_err_t.
 * Only the apiserver turns an lo_err_t into a Kubernetes Status body; lower
 * layers may leave `code` at 0 and let the caller pick the HTTP status.
 *
 * Out of memory is fatal by policy (lo_fatal): callers never NULL-check the
 * lo_* allocators.
 */
#ifndef LANGOP_COMMON_H
#define LANGOP_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>
#include <jansson.h>

#define LO_ERR_MESSAGE_MAX 1024

typedef struct lo_err {
    int code;                          /* HTTP status; 0 = unset */
    char reason[40];                   /* Kubernetes StatusReason, e.g. "NotFound" */
    char message[LO_ERR_MESSAGE_MAX];  /* human readable, one line */
    json_t *details;                   /* owned (new reference) or NULL: Status.details */
} lo_err_t;

/** A JSON string of s, invalid UTF-8 replaced by U+FFFD: never NULL, unlike json_string(). */
json_t *lo_json_text(const char *s);

/** Resets err to "no error", releasing details. err may be NULL. */
void lo_err_clear(lo_err_t *err);

/**
 * Fills err (may be NULL) with code, reason and a printf-style message.
 * Keeps details. The message is made valid UTF-8 (langop/text.h): it may
 * quote anything a client sent.
 */
void lo_err_set(lo_err_t *err, int code, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/** lo_err_set with a va_list: every error message passes through here. */
void lo_err_setv(lo_err_t *err, int code, const char *reason, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

/** Replaces err->details; the reference to details is stolen. */
void lo_err_set_details(lo_err_t *err, json_t *details);

/** Appends a cause {reason, message, field} (each made valid UTF-8) to err->details.causes. */
void lo_err_add_cause(lo_err_t *err, const char *reason, const char *message, const char *field);

/** Prints a message and aborts. For broken invariants and out of memory. */
void lo_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/** malloc/calloc/strdup/realloc that die rather than return NULL. */
void *lo_malloc(size_t n);
void *lo_calloc(size_t n, size_t size);
void *lo_realloc(void *p, size_t n);
char *lo_strdup(const char *s);
char *lo_strndup(const char *s, size_t n);
/** asprintf that dies on failure; caller frees. */
char *lo_sprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Logging: one line per call, on stderr, lines from different threads never
 * interleaved. lo_verbosity is set from -v once, before any thread starts.
 * Between lo_log_start() and lo_log_stop(), lines go through a queue to a
 * logging thread that writes what has gathered in one write(): the request
 * path never waits on stderr, and a busy server writes many lines per
 * system call; an idle one, each line at once. When 4 MiB wait (stderr
 * does not drain), a caller waits. Before start and after stop (and in
 * tests), lines are written directly, one write each.
 */
extern int lo_verbosity;
void lo_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** lo_log of text[0..n) as it is, with no format to read: for a line per request. */
void lo_log_text(int level, const char *text, size_t n);
void lo_log_start(void);
/** Writes out every queued line and stops the logging thread. */
void lo_log_stop(void);
#define LO_INFO 0
#define LO_DEBUG 2
#define LO_TRACE 4

/** Current time as RFC 3339 UTC with seconds ("2025-01-02T03:04:05Z"); buf >= 21 bytes. */
void lo_time_rfc3339(char *buf, size_t size);
/** Parses an RFC 3339 time; returns -1 if it is not one. */
int lo_time_parse(const char *text, int64_t *unix_seconds);
/** Monotonic clock in milliseconds. */
int64_t lo_now_ms(void);

/** A random RFC 4122 version-4 UUID, 36 characters + NUL. */
void lo_uuid4(char out[37]);
/** n random characters from Kubernetes' generateName alphabet; out needs n+1 bytes. */
void lo_random_suffix(char *out, size_t n);

/*
 * A growable byte string: data is malloc'd (NULL until something is put),
 * kept NUL-terminated, and freed by its owner (free(b.data)).
 */
typedef struct lo_buf {
    char *data;
    size_t len, cap;
} lo_buf_t;

void lo_buf_reserve(lo_buf_t *b, size_t extra);
void lo_buf_put(lo_buf_t *b, const void *s, size_t n);
void lo_buf_puts(lo_buf_t *b, const char *s);
void lo_buf_char(lo_buf_t *b, char c);
void lo_buf_printf(lo_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Cuts back to len (a length the buffer had before). */
void lo_buf_truncate(lo_buf_t *b, size_t len);
/** The text so far ("" before anything was put). */
const char *lo_buf_str(const lo_buf_t *b);

/**
 * The shortest "%g" text that reads back as exactly d ("3.9", "1e+06"),
 * as Go prints a float64; printf's 17 digits would show "3.8999999999999999".
 */
void lo_real_text(double d, char *buf, size_t size);

/** Lower-case hex SHA-256 of data: 64 characters + NUL. */
void lo_sha256_hex(const void *data, size_t len, char out[65]);

/** Base64 (standard alphabet, padded). Caller frees. */
char *lo_base64_encode(const void *data, size_t len);
/** Decodes standard or URL-safe base64, padded or not; returns NULL on bad input. Caller frees; *out_len set. */
unsigned char *lo_base64_decode(const char *text, size_t *out_len);

#endif
