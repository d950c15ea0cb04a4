/*
 * fuzz_apply.c - server-side apply and field ownership
 * (registry/managedfields.c), over a sequence of writes to one object as
 * the registry makes them (registry/writes.c): applies and updates by
 * several managers, forced or not, to the object or its status.
 *
 * Input: a first part whose first byte picks the kind, then up to
 * MAX_STEPS parts separated by NUL bytes, each a write: its first byte says
 * who and how (bits 0-1 the manager, bit 2 force, bit 3 the status
 * subresource, bit 4 an update rather than an apply), the rest is the body
 * (YAML). Each write that the registry would accept becomes the live object
 * of the next, so managedFields are always the server's own.
 *
 * Checked besides crashes: a refusal is a well-formed 4xx; an apply that
 * succeeded, applied again by the same manager to its result, succeeds (a
 * manager never conflicts with itself) and changes nothing but the entry's
 * time; the field-set algebra (union, difference, intersection) keeps its
 * laws on the sets of the objects written.
 *
 * LANGOP_FUZZ_TRACE=1 prints each write and the object it leaves.
 */
#include "fuzz.h"

#define MAX_STEPS 6

static const char *const managers[] = {"kubectl", "alice", "bob", "kubectl-client-side-apply"};

/* The body of a write as the registry decodes it: an object of kind k, unknown fields pruned. NULL if refused. */
static json_t *decode_body(const schema_kind_t *k, fuzz_part_t part)
{
    lo_err_t err = {0};
    json_t *v = codec_decode_yaml(part.p, part.n, &err);
    lo_err_clear(&err);
    if (!json_is_object(v)) {
        json_decref(v);
        return NULL;
    }
    json_object_set_new(v, "apiVersion", json_string(SCHEMA_GROUP_VERSION));
    json_object_set_new(v, "kind", json_string(k->kind));
    if (objmeta_check_envelope(k, v, &err) != 0) {
        lo_err_clear(&err);
        json_decref(v);
        return NULL;
    }
    validate_prune(k, v, NULL);
    return v;
}

/* A copy of obj without the times of its managedFields entries (what a repeated apply may change). */
static json_t *without_times(const json_t *obj)
{
    json_t *c = json_deep_copy(obj);
    json_t *entries = json_object_get(json_object_get(c, "metadata"), "managedFields");
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e) json_object_del(e, "time");
    return c;
}

static void check_set_laws(const json_t *a, const json_t *b)
{
    json_t *u = managedfields_union(a, b), *u2 = managedfields_union(b, a);
    json_t *i = managedfields_intersection(a, b);
    json_t *self = managedfields_difference(a, a);
    json_t *a_minus_u = managedfields_difference(a, u), *b_minus_u = managedfields_difference(b, u);
    json_t *i_minus_a = managedfields_difference(i, a);
    char *sa = codec_encode_json(a), *sb = codec_encode_json(b);
    FUZZ_CHECK(json_equal(u, u2), "union is not symmetric: %s | %s", sa, sb);
    FUZZ_CHECK(managedfields_empty(self), "a - a is not empty: %s", sa);
    FUZZ_CHECK(managedfields_empty(a_minus_u) && managedfields_empty(b_minus_u), "a union misses a part: %s | %s", sa,
               sb);
    FUZZ_CHECK(managedfields_empty(i_minus_a), "an intersection holds more than a: %s & %s", sa, sb);
    free(sa);
    free(sb);
    json_decref(u);
    json_decref(u2);
    json_decref(i);
    json_decref(self);
    json_decref(a_minus_u);
    json_decref(b_minus_u);
    json_decref(i_minus_a);
}

/* The object the registry would store after a write whose merged document is doc; NULL if it is refused. */
static json_t *stored(const schema_kind_t *k, const json_t *live, json_t *doc, int status, int applying)
{
    lo_err_t err = {0};
    json_t *next = NULL;
    validate_default(k, doc);
    if (live == NULL) {
        /* an apply's create keeps the ownership the apply computed; a PUT's create starts afresh */
        json_t *owners = applying ? json_incref(json_object_get(objmeta_metadata(doc), "managedFields")) : NULL;
        int rc = objmeta_prepare_create(k, k->namespaced ? "default" : "", doc, &err);
        if (owners)
            json_object_set_new(objmeta_metadata(doc), "managedFields", owners);
        next = rc == 0 ? json_incref(doc) : NULL;
    } else {
        next = status ? objmeta_merge_status(live, doc) : objmeta_merge_update(k, live, doc, &err);
        if (next && applying)
            json_object_set(objmeta_metadata(next), "managedFields",
                            json_object_get(json_object_get(doc, "metadata"), "managedFields"));
    }
    if (next && (validate_object(k, next, &err) != 0 ||
                 admission_check_fields(k, live ? ADMISSION_UPDATE : ADMISSION_CREATE, live, next, &err) != 0)) {
        json_decref(next);
        next = NULL;
    }
    if (next == NULL)
        fuzz_check_err(&err, "storing the write");
    lo_err_clear(&err);
    return next;
}

/* One apply; returns the new live object (new reference) or NULL when it is refused. */
static json_t *step_apply(const schema_kind_t *k, const json_t *live, const json_t *body, const char *manager,
                          int force, int status)
{
    const char *sub = status ? "status" : NULL;
    if (live == NULL && status)
        return NULL; /* an apply to the status of an object that does not exist is a 404 */
    lo_err_t err = {0};
    json_t *out = NULL;
    if (managedfields_apply(k, live, body, manager, force, sub, &out, &err) != 0) {
        fuzz_check_err(&err, "managedfields_apply");
        FUZZ_CHECK(out == NULL, "a refused apply gave an object");
        lo_err_clear(&err);
        return NULL;
    }
    json_t *again = NULL;
    int rc = managedfields_apply(k, out, body, manager, 0, sub, &again, &err);
    char *a = codec_encode_json(out);
    FUZZ_CHECK(rc == 0, "applying the same configuration again conflicts: %s\n object %s", err.message, a);
    json_t *x = without_times(out), *y = without_times(again);
    char *b = codec_encode_json(again);
    FUZZ_CHECK(json_equal(x, y), "applying the same configuration again changed the object:\n once  %s\n twice %s", a,
               b);
    free(a);
    free(b);
    json_decref(x);
    json_decref(y);
    json_decref(again);

    json_t *set_live = managedfields_set_of(k, live), *set_out = managedfields_set_of(k, out);
    check_set_laws(set_live, set_out);
    json_decref(set_live);
    json_decref(set_out);

    json_t *next = stored(k, live, out, status, 1);
    json_decref(out);
    return next;
}

/* One update (PUT): the body becomes the object, its changes the manager's. */
static json_t *step_update(const schema_kind_t *k, const json_t *live, json_t *body, const char *manager, int status)
{
    if (live == NULL && status)
        return NULL;
    json_t *next = stored(k, live, body, status, 0);
    if (next != NULL)
        managedfields_record_update(k, live, next, manager, status ? "status" : NULL);
    return next;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_registry();
    fuzz_part_t parts[MAX_STEPS + 1];
    size_t n = fuzz_split(data, size, parts, MAX_STEPS + 1);
    if (parts[0].n == 0)
        return 0;
    const schema_kind_t *k = schema_kind_at((unsigned char)parts[0].p[0] % schema_kind_count());
    json_t *live = NULL;
    for (size_t s = 1; s < n; s++) {
        if (parts[s].n == 0)
            continue;
        unsigned char how = (unsigned char)parts[s].p[0];
        json_t *body = decode_body(k, (fuzz_part_t){parts[s].p + 1, parts[s].n - 1});
        if (body == NULL)
            continue;
        const char *manager = managers[how & 3];
        int force = (how >> 2) & 1, status = (how >> 3) & 1 && k->has_status;
        json_t *next = (how >> 4) & 1 ? step_update(k, live, body, manager, status)
                                      : step_apply(k, live, body, manager, force, status);
        if (getenv("LANGOP_FUZZ_TRACE")) {
            char *b = codec_encode_json(body), *o = next ? codec_encode_json(next) : NULL;
            fprintf(stderr, "%s %s%s%s: %s\n -> %s\n", (how >> 4) & 1 ? "update" : "apply", manager,
                    force ? " force" : "", status ? " status" : "", b, o ? o : "(refused)");
            free(b);
            free(o);
        }
        json_decref(body);
        if (next != NULL) {
            json_decref(live);
            live = next;
        }
    }
    json_decref(live);
    return 0;
}
