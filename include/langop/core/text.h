/*
 * text.h - text from a request, made safe to send back.
 *
 * Whatever a client sends (a name, a query value, a field of a body) may be
 * echoed in an error message, a cause, a Warning header or a log line. JSON
 * and HTTP both need it to be valid UTF-8, and a header value must not hold
 * a line break, or the client would read a header of the sender's making.
 * The error channel (lo_err_set, lo_err_add_cause), the response headers and
 * the log pass all text through here, so no caller has to remember.
 *
 * Invalid UTF-8 (stray continuation bytes, overlong forms, surrogates, code
 * points above U+10FFFF, sequences cut short) becomes U+FFFD, one per byte,
 * as Go's encoding/json writes it.
 */
#ifndef LANGOP_TEXT_H
#define LANGOP_TEXT_H

#include <stddef.h>

/** 1 when s[0..n) is valid UTF-8, else 0. */
int text_utf8_valid(const char *s, size_t n);
/** Length of the valid UTF-8 sequence at s[0..n) (1 for ASCII), or 0 when it is not one; n > 0. */
size_t text_utf8_sequence(const unsigned char *s, size_t n);

/** s[0..n) with every invalid byte replaced by U+FFFD: a new string (caller frees). */
char *text_utf8_repair(const char *s, size_t n);

/**
 * Makes the string in buf (cap bytes, NUL-terminated) valid UTF-8 in place,
 * cutting it at a character boundary when the replacements do not fit. Also
 * what to call after snprintf into a fixed buffer, which may cut a character
 * in two.
 */
void text_utf8_repair_in_place(char *buf, size_t cap);

/**
 * s as a safe HTTP field value: valid UTF-8, and every control character
 * (C0 but horizontal tab, and DEL) replaced by a space, as Go's net/http
 * does for header values. A new string (caller frees).
 */
char *text_header_value(const char *s);

/**
 * s as the quoted-string of RFC 9110 §5.6.4 between the quotes: '"' and
 * '\' escaped, and safe as text_header_value makes it. Caller frees.
 */
char *text_header_quoted(const char *s);

#endif
