/*
 * fuzz.h - what the libFuzzer targets of tests/fuzz/ share: a check that
 * fails loudly (a failed check is a finding, as a crash is), the schema
 * registry loaded once per process, input cut into parts, and the path a
 * decoded body takes before it is stored (envelope, pruning, defaults,
 * validation, field rules) run for every kind.
 *
 * Header-only (static functions) so that each target stays one file; a
 * target defines LLVMFuzzerTestOneInput and uses what it needs.
 */
#ifndef LANGOP_FUZZ_H
#define LANGOP_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "langop/core/codec.h"
#include "langop/core/common.h"
#include "langop/core/text.h"
#include "langop/registry/managedfields.h"
#include "langop/schema/admission.h"
#include "langop/schema/objmeta.h"
#include "langop/schema/schema.h"
#include "langop/schema/table.h"
#include "langop/schema/validate.h"

/* A property the code promises does not hold: print why and abort, which libFuzzer reports as a crash. */
#define FUZZ_CHECK(cond, ...)                                                                                          \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "\nfuzz check failed at %s:%d: %s\n  ", __FILE__, __LINE__, #cond);                        \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fputc('\n', stderr);                                                                                       \
            abort();                                                                                                   \
        }                                                                                                              \
    } while (0)

/* The embedded schema registry, loaded on first use (the kinds every target validates against). */
static inline void fuzz_registry(void)
{
    static int loaded;
    if (loaded)
        return;
    lo_err_t err = {0};
    if (schema_registry_load(&err) != 0) {
        fprintf(stderr, "schema_registry_load: %s\n", err.message);
        abort();
    }
    loaded = 1;
}

typedef struct fuzz_part {
    const char *p;
    size_t n;
} fuzz_part_t;

/*
 * Cuts data at NUL bytes into at most max parts (the last takes the rest, NULs
 * included); returns how many. NUL separates well: neither JSON nor YAML
 * text may hold one.
 */
static inline size_t fuzz_split(const uint8_t *data, size_t size, fuzz_part_t *parts, size_t max)
{
    size_t n = 0, start = 0;
    for (size_t i = 0; i < size && n + 1 < max; i++) {
        if (data[i] == '\0') {
            parts[n++] = (fuzz_part_t){(const char *)data + start, i - start};
            start = i + 1;
        }
    }
    parts[n++] = (fuzz_part_t){(const char *)data + start, size - start};
    return n;
}

/* A NUL-terminated copy of a part (caller frees). */
static inline char *fuzz_string(fuzz_part_t part)
{
    return lo_strndup(part.p, part.n);
}

/* An error from a decoder or validator is a Kubernetes Status in the making: a 4xx code, a reason, valid UTF-8. */
static inline void fuzz_check_err(const lo_err_t *err, const char *what)
{
    FUZZ_CHECK(err->code >= 400 && err->code < 500, "%s: error code %d (%s)", what, err->code, err->message);
    FUZZ_CHECK(err->reason[0] != '\0', "%s: error without a reason: %s", what, err->message);
    FUZZ_CHECK(err->message[0] != '\0', "%s: error without a message", what);
    FUZZ_CHECK(text_utf8_valid(err->message, strlen(err->message)), "%s: message is not UTF-8", what);
}

/* Encoding is the inverse of decoding: JSON and YAML both give back an equal tree. */
static inline void fuzz_check_roundtrip(const json_t *v)
{
    lo_err_t err = {0};
    size_t len;
    char *text = codec_encode_json_len(v, &len);
    json_t *back = codec_decode_json(text, len, &err);
    FUZZ_CHECK(back != NULL && json_equal(back, v), "JSON encode/decode changed the value: %s (%s)", text, err.message);
    json_decref(back);
    free(text);
    lo_err_clear(&err);

    text = codec_encode_yaml(v);
    back = codec_decode_yaml(text, strlen(text), &err);
    char *again = back ? codec_encode_json(back) : NULL, *orig = codec_encode_json(v);
    FUZZ_CHECK(back != NULL && json_equal(back, v), "YAML encode/decode changed the value:\n%s\nfrom %s\nto %s (%s)",
               text, orig, again ? again : "(null)", err.message);
    free(again);
    free(orig);
    json_decref(back);
    free(text);
    lo_err_clear(&err);
}

/*
 * The way of a decoded body to the store, for kind k, on a copy of v: the
 * envelope (apiVersion and kind set to k's first, so that every body
 * reaches the checks of every kind), unknown fields pruned, defaults, the
 * metadata of a create, the schema, the field rules of a create and of an
 * update; then, for an object that passed, its Table row and its field set.
 * A refusal must be a well-formed error; nothing may crash.
 */
static inline void fuzz_admit_as_kind(const schema_kind_t *k, const json_t *v)
{
    if (!json_is_object(v))
        return;
    json_t *obj = json_deep_copy(v);
    json_object_set_new(obj, "apiVersion", json_string(SCHEMA_GROUP_VERSION));
    json_object_set_new(obj, "kind", json_string(k->kind));
    lo_err_t err = {0};
    json_t *unknown = json_array();
    int ok = objmeta_check_envelope(k, obj, &err) == 0;
    if (ok) {
        validate_prune(k, obj, unknown);
        validate_default(k, obj);
        ok = objmeta_prepare_create(k, k->namespaced ? "default" : "", obj, &err) == 0;
    }
    if (ok)
        ok = validate_object(k, obj, &err) == 0;
    if (ok)
        ok = admission_check_fields(k, ADMISSION_CREATE, NULL, obj, &err) == 0;
    if (ok)
        ok = admission_check_fields(k, ADMISSION_UPDATE, obj, obj, &err) == 0;
    if (!ok) {
        fuzz_check_err(&err, k->kind);
    } else {
        json_t *row = table_render_object(k, obj, TABLE_INCLUDE_OBJECT, 1, 1700000000);
        json_decref(row);
        json_decref(managedfields_set_of(k, obj));
        fuzz_check_roundtrip(obj);
    }
    lo_err_clear(&err);
    json_decref(unknown);
    json_decref(obj);
}

static inline void fuzz_admit_as_each_kind(const json_t *v)
{
    fuzz_registry();
    for (size_t i = 0; i < schema_kind_count(); i++)
        fuzz_admit_as_kind(schema_kind_at(i), v);
}

#endif
