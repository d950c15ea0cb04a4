/*
 * negotiate.c - Accept and Content-Type parsing (see langop/negotiate.h).
 */
#include "langop/request/negotiate.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static void copy_trimmed(char *dst, size_t cap, const char *src, size_t len)
{
    while (len && isspace((unsigned char)*src))
        src++, len--;
    while (len && isspace((unsigned char)src[len - 1]))
        len--;
    if (len >= cap)
        len = cap - 1;
    for (size_t i = 0; i < len; i++)
        dst[i] = (char)tolower((unsigned char)src[i]);
    dst[len] = '\0';
}

/* Parses "type/subtype;k=v;k=v" from text[0..len). */
static int parse_range(const char *text, size_t len, media_type_t *out)
{
    memset(out, 0, sizeof(*out));
    const char *end = text + len;
    const char *semi = memchr(text, ';', len);
    const char *mt_end = semi ? semi : end;
    const char *slash = memchr(text, '/', (size_t)(mt_end - text));
    if (slash == NULL)
        return -1;
    copy_trimmed(out->type, sizeof(out->type), text, (size_t)(slash - text));
    copy_trimmed(out->subtype, sizeof(out->subtype), slash + 1, (size_t)(mt_end - slash - 1));
    if (!out->type[0] || !out->subtype[0])
        return -1;
    const char *p = semi;
    while (p && p < end) {
        p++;
        const char *next = memchr(p, ';', (size_t)(end - p));
        const char *pend = next ? next : end;
        const char *eq = memchr(p, '=', (size_t)(pend - p));
        if (eq) {
            char key[16], val[64];
            copy_trimmed(key, sizeof(key), p, (size_t)(eq - p));
            /* parameter values are case-sensitive (Table, APIGroupDiscoveryList) */
            size_t vlen = (size_t)(pend - eq - 1);
            const char *v = eq + 1;
            while (vlen && isspace((unsigned char)*v))
                v++, vlen--;
            while (vlen && isspace((unsigned char)v[vlen - 1]))
                vlen--;
            snprintf(val, sizeof(val), "%.*s", (int)vlen, v);
            if (strcmp(key, "as") == 0)
                snprintf(out->as, sizeof(out->as), "%.*s", (int)sizeof(out->as) - 1, val);
            else if (strcmp(key, "v") == 0)
                snprintf(out->v, sizeof(out->v), "%.*s", (int)sizeof(out->v) - 1, val);
            else if (strcmp(key, "g") == 0)
                snprintf(out->g, sizeof(out->g), "%.*s", (int)sizeof(out->g) - 1, val);
        }
        p = next;
    }
    return 0;
}

size_t negotiate_parse_accept(const char *accept, media_type_t *out, size_t max)
{
    size_t n = 0;
    if (accept == NULL || accept[0] == '\0') {
        parse_range("*/*", 3, &out[0]);
        return 1;
    }
    const char *p = accept;
    while (*p && n < max) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (parse_range(p, len, &out[n]) == 0)
            n++;
        if (!comma)
            break;
        p = comma + 1;
    }
    return n;
}

int negotiate_parse_one(const char *text, media_type_t *out)
{
    return parse_range(text, strlen(text), out);
}

int negotiate_plain(const media_type_t *mt, const char *subtype)
{
    if (mt->as[0])
        return 0;
    if (strcmp(mt->type, "*") == 0 && strcmp(mt->subtype, "*") == 0)
        return 1;
    if (strcmp(mt->type, "application") != 0)
        return 0;
    return strcmp(mt->subtype, "*") == 0 || strcmp(mt->subtype, subtype) == 0;
}
