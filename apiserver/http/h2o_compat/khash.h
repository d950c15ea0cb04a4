/*
 * khash.h - the names <h2o/http2_internal.h> takes from its hash table
 * header, which Debian's libh2o-dev-common does not ship. edge.c includes
 * that h2o header to read an HTTP/2 connection's state with the layout h2o
 * was built with (see edge.c); of the connection's stream map it needs only
 * the type of the pointer. The lookups are never called by the server, and
 * abort if they ever are: a stand-in here must not answer wrongly.
 */
#ifndef LANGOP_H2O_COMPAT_KHASH_H
#define LANGOP_H2O_COMPAT_KHASH_H

#include <stdint.h>
#include <stdlib.h>

typedef uint32_t khint_t;
typedef khint_t khiter_t;

#define KHASH_MAP_INIT_INT64(name, khval_t) typedef struct kh_##name##_s kh_##name##_t;
#define khash_t(name) kh_##name##_t
#define kh_get(name, h, k) ((void)(h), (void)(k), abort(), (khiter_t)0)
#define kh_end(h) ((void)(h), (khiter_t)0)
#define kh_val(h, x) ((void)(h), (void)(x), (void *)0)

#endif
