/*
 * fixtures.h - what several unit tests share: a store in a fresh temporary
 * directory, the schema registry, and JSON from test text. Header-only
 * (static inline) so that each test stays one self-contained executable;
 * include it after <cmocka.h>.
 */
#ifndef LANGOP_TEST_FIXTURES_H
#define LANGOP_TEST_FIXTURES_H

#include "sanitizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>

#include "langop/core/codec.h"
#include "langop/schema/schema.h"
#include "langop/storage/store.h"

typedef struct fx_store {
    char dir[64];
    char path[96];
    store_t *s;
} fx_store_t;

/** A store in a new directory /tmp/<name>.XXXXXX; NULL (and a message) on failure. */
static inline fx_store_t *fx_store_open(const char *name)
{
    fx_store_t *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/%s.XXXXXX", name);
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return NULL;
    }
    snprintf(f->path, sizeof(f->path), "%s/store.db", f->dir);
    lo_err_t err = {0};
    store_options_t opts = {.path = f->path, .sync_full = 0};
    f->s = store_open(&opts, &err);
    if (f->s == NULL) {
        print_error("store_open: %s\n", err.message);
        lo_err_clear(&err);
        rmdir(f->dir);
        free(f);
        return NULL;
    }
    return f;
}

/** Closes the store and removes its files and directory. */
static inline void fx_store_close(fx_store_t *f)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    store_close(f->s);
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(*suffixes); i++) {
        char p[128];
        snprintf(p, sizeof(p), "%s%s", f->path, suffixes[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
}

/** cmocka group setup/teardown: the embedded schema registry. */
static inline int fx_registry_setup(void **state)
{
    (void)state;
    lo_err_t err = {0};
    if (schema_registry_load(&err) < 0) {
        print_error("schema_registry_load: %s\n", err.message);
        lo_err_clear(&err);
        return -1;
    }
    return 0;
}

static inline int fx_registry_teardown(void **state)
{
    (void)state;
    schema_registry_free();
    return 0;
}

/** JSON (any value) from test text; fails the test on bad text. New reference. */
static inline json_t *fx_json(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);
    if (v == NULL)
        fail_msg("bad test JSON: %s: %s", jerr.text, text);
    return v;
}

/** A value from test YAML (flow style keeps tests short); fails the test on bad text. New reference. */
static inline json_t *fx_yaml(const char *text)
{
    lo_err_t err = {0};
    json_t *v = codec_decode_yaml(text, strlen(text), &err);
    if (v == NULL)
        fail_msg("bad test YAML: %s: %s", err.message, text);
    return v;
}

#endif
