/*
 * negotiate.h - content negotiation: parsing Accept and Content-Type.
 *
 * Kubernetes picks the first entry of Accept that it can serve (it does not
 * sort by q), and says in Content-Type which one it chose; we do the same.
 */
#ifndef LANGOP_NEGOTIATE_H
#define LANGOP_NEGOTIATE_H

#include <stddef.h>

#define NEGOTIATE_MAX_TYPES 16

typedef struct media_type {
    char type[32];       /* "application", "*" */
    char subtype[64];    /* "json", "yaml", "*" */
    char as[48];         /* the as= parameter ("Table", "APIGroupDiscoveryList"), or "" */
    char v[32];          /* v= */
    char g[64];          /* g= */
} media_type_t;

/** Splits an Accept header into at most max entries; NULL or "" yields one "*\/\*" entry. */
size_t negotiate_parse_accept(const char *accept, media_type_t *out, size_t max);

/** Parses one media type (Content-Type). Returns -1 if it is not type/subtype. */
int negotiate_parse_one(const char *text, media_type_t *out);

/** 1 if mt accepts application/<subtype> (exact, application/\*, or \*\/\*) and carries no as=. */
int negotiate_plain(const media_type_t *mt, const char *subtype);

#endif
