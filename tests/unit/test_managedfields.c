/*
 * test_managedfields.c - server-side apply field ownership.
 *
 * The apply cases follow the examples of the Kubernetes "Server-Side Apply"
 * documentation (two appliers, conflicts with and without force, shared
 * ownership, removal of fields a manager stops applying, a client-side
 * apply Update manager meeting an apply, list-map items and set items owned
 * per item), run on the kinds' real schemas. The set cases pin the FieldsV1
 * shape that kubectl and client libraries read, byte for byte.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "langop/registry/managedfields.h"

static const schema_kind_t *agent, *model;

static int setup(void **state)
{
    (void)state;
    lo_err_t err = {0};
    if (schema_registry_load(&err) != 0) {
        fprintf(stderr, "schema_registry_load: %s\n", err.message);
        return -1;
    }
    agent = schema_kind_by_kind("LanguageAgent");
    model = schema_kind_by_kind("LanguageModel");
    return agent && model ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    schema_registry_free();
    return 0;
}

/* ---- helpers ---- */

static json_t *J(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &e);
    if (j == NULL)
        fail_msg("bad test JSON (%s): %s", e.text, text);
    return j;
}

/* Compact, order-preserving serialization: what a client would read. */
static void assert_dump(const json_t *got, const char *want)
{
    char *s = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
    if (strcmp(s, want) != 0) {
        fprintf(stderr, "got:  %s\nwant: %s\n", s, want);
        free(s);
        fail();
    }
    free(s);
}

/* Order-independent equality with a JSON text. */
static void assert_json(const json_t *got, const char *want)
{
    json_t *w = J(want);
    if (!json_equal((json_t *)got, w)) {
        char *s = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        fprintf(stderr, "got:  %s\nwant: %s\n", s, want);
        free(s);
        json_decref(w);
        fail();
    }
    json_decref(w);
}

#define AGENT(spec) \
    "{\"apiVersion\":\"langop.io/v1alpha1\",\"kind\":\"LanguageAgent\"," \
    "\"metadata\":{\"name\":\"a\",\"namespace\":\"default\"},\"spec\":" spec "}"
#define MODEL(spec) \
    "{\"apiVersion\":\"langop.io/v1alpha1\",\"kind\":\"LanguageModel\"," \
    "\"metadata\":{\"name\":\"m\",\"namespace\":\"default\"},\"spec\":" spec "}"

/* Applies cfg by manager onto live (stolen, may be NULL); must succeed. */
static json_t *apply_ok(const schema_kind_t *k, json_t *live, const char *cfg, const char *manager, int force)
{
    lo_err_t err = {0};
    json_t *applied = J(cfg), *out = NULL;
    int rc = managedfields_apply(k, live, applied, manager, force, NULL, &out, &err);
    if (rc != 0)
        fail_msg("apply by %s failed: %d %s", manager, err.code, err.message);
    assert_non_null(out);
    json_decref(live);
    json_decref(applied);
    lo_err_clear(&err);
    return out;
}

/* Applies cfg by manager onto live (borrowed); must fail. err is filled. */
static void apply_fails(const schema_kind_t *k, const json_t *live, const char *cfg, const char *manager,
                        lo_err_t *err)
{
    json_t *applied = J(cfg), *out = (json_t *)1;
    assert_int_equal(managedfields_apply(k, live, applied, manager, 0, NULL, &out, err), -1);
    assert_null(out);
    json_decref(applied);
}

/* Borrowed: the entry of manager with operation op, or NULL. */
static const json_t *entry(const json_t *obj, const char *manager, const char *op)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(json_object_get(obj, "metadata"), "managedFields"), i, e) {
        if (strcmp(json_string_value(json_object_get(e, "manager")), manager) == 0 &&
            strcmp(json_string_value(json_object_get(e, "operation")), op) == 0)
            return e;
    }
    return NULL;
}

static const json_t *fields(const json_t *obj, const char *manager, const char *op)
{
    const json_t *e = entry(obj, manager, op);
    if (e == NULL)
        fail_msg("no %s entry for %s", op, manager);
    return json_object_get(e, "fieldsV1");
}

static size_t entry_count(const json_t *obj)
{
    return json_array_size(json_object_get(json_object_get(obj, "metadata"), "managedFields"));
}

static const char *spec_str(const json_t *obj, const char *field)
{
    return json_string_value(json_object_get(json_object_get(obj, "spec"), field));
}

static const json_t *cause(const lo_err_t *err, size_t i)
{
    return json_array_get(json_object_get(err->details, "causes"), i);
}

/* ---- field sets of objects ---- */

static void test_set_of_agent_shape(void **state)
{
    (void)state;
    json_t *obj = J("{\"apiVersion\":\"langop.io/v1alpha1\",\"kind\":\"LanguageAgent\",\"metadata\":{"
                    "\"name\":\"a\",\"namespace\":\"default\",\"uid\":\"u-1\",\"resourceVersion\":\"5\","
                    "\"generation\":2,\"creationTimestamp\":\"2025-01-02T03:04:05Z\",\"labels\":{\"app\":\"x\"},"
                    "\"annotations\":{\"note\":\"y\"},\"finalizers\":[\"langop.io/cleanup\"]},\"spec\":{"
                    "\"models\":[{\"name\":\"m1\",\"role\":\"primary\"},{\"name\":\"m2\"}],\"image\":\"img\","
                    "\"deployment\":{\"nodeSelector\":{\"disk\":\"ssd\"},\"env\":[{\"name\":\"A\",\"value\":\"1\"}]}}}");
    json_t *set = managedfields_set_of(agent, obj);
    /* No apiVersion, kind or server-owned metadata; labels without "."
     * (an Apply set marks only list items and undeclared map entries);
     * list-map items keyed, with "." and their own fields; atomic env whole. */
    assert_dump(set, "{\"f:metadata\":{\"f:annotations\":{\"f:note\":{}},\"f:finalizers\":{\"v:\\\"langop.io/cleanup\\\"\":{}},"
                     "\"f:labels\":{\"f:app\":{}}},\"f:spec\":{\"f:deployment\":{\"f:env\":{},\"f:nodeSelector\":"
                     "{\"f:disk\":{}}},\"f:image\":{},\"f:models\":{\"k:{\\\"name\\\":\\\"m1\\\"}\":{\".\":{},"
                     "\"f:name\":{},\"f:role\":{}},\"k:{\\\"name\\\":\\\"m2\\\"}\":{\".\":{},\"f:name\":{}}}}}");
    json_decref(set);
    json_decref(obj);
}

static void test_set_of_model_set_and_empty(void **state)
{
    (void)state;
    json_t *obj = J(MODEL("{\"provider\":\"openai\",\"fallbacks\":[\"b\",\"a\"],\"rateLimits\":{},"
                          "\"params\":{\"extra\":{\"top_p\":1},\"tags\":[1,2]},\"endpoint\":null}"));
    json_t *set = managedfields_set_of(model, obj);
    /* set items by value; an empty map and a null are leaves; undeclared
     * entries of a preserve-unknown-fields map are members (with "."
     * when they have children); lists there are atomic */
    assert_dump(set, "{\"f:spec\":{\"f:endpoint\":{},\"f:fallbacks\":{\"v:\\\"a\\\"\":{},\"v:\\\"b\\\"\":{}},"
                     "\"f:params\":{\"f:extra\":{\".\":{},\"f:top_p\":{}},\"f:tags\":{}},\"f:provider\":{},"
                     "\"f:rateLimits\":{}}}");
    json_decref(set);
    json_decref(obj);

    /* an empty list-type map owns nothing in an Apply set */
    obj = J(AGENT("{\"models\":[]}"));
    set = managedfields_set_of(agent, obj);
    assert_dump(set, "{}");
    assert_true(managedfields_empty(set));
    json_decref(set);
    json_decref(obj);
}

static void test_set_of_multi_key(void **state)
{
    (void)state;
    /* a kind of our own making: a list-map with two keys, one defaulted */
    json_t *schema = J("{\"type\":\"object\",\"properties\":{\"spec\":{\"type\":\"object\",\"properties\":{"
                       "\"ports\":{\"type\":\"array\",\"x-kubernetes-list-type\":\"map\","
                       "\"x-kubernetes-list-map-keys\":[\"protocol\",\"containerPort\"],\"items\":{\"type\":\"object\","
                       "\"properties\":{\"containerPort\":{\"type\":\"integer\"},\"protocol\":{\"type\":\"string\","
                       "\"default\":\"TCP\"},\"name\":{\"type\":\"string\"}}}}}}}}");
    schema_kind_t k = {.kind = "Test", .openapi_schema = schema};
    json_t *obj = J("{\"spec\":{\"ports\":[{\"containerPort\":53,\"protocol\":\"UDP\",\"name\":\"dns\"},"
                    "{\"containerPort\":8080}]}}");
    json_t *set = managedfields_set_of(&k, obj);
    assert_dump(set, "{\"f:spec\":{\"f:ports\":{\"k:{\\\"containerPort\\\":53,\\\"protocol\\\":\\\"UDP\\\"}\":"
                     "{\".\":{},\"f:containerPort\":{},\"f:name\":{},\"f:protocol\":{}},"
                     "\"k:{\\\"containerPort\\\":8080,\\\"protocol\\\":\\\"TCP\\\"}\":{\".\":{},\"f:containerPort\":{}}}}}");
    json_decref(set);
    json_decref(obj);
    json_decref(schema);
}

/* ---- set algebra ---- */

static void test_set_algebra(void **state)
{
    (void)state;
    json_t *a = J("{\"f:spec\":{\".\":{},\"f:a\":{},\"f:b\":{}}}");
    json_t *b = J("{\"f:spec\":{\"f:c\":{},\"f:b\":{}}}");
    json_t *r;

    r = managedfields_union(a, b);
    assert_dump(r, "{\"f:spec\":{\".\":{},\"f:a\":{},\"f:b\":{},\"f:c\":{}}}");
    json_decref(r);
    r = managedfields_difference(a, b);
    assert_dump(r, "{\"f:spec\":{\".\":{},\"f:a\":{}}}");
    json_decref(r);
    r = managedfields_difference(b, a);
    assert_dump(r, "{\"f:spec\":{\"f:c\":{}}}");
    json_decref(r);
    r = managedfields_intersection(a, b);
    assert_dump(r, "{\"f:spec\":{\"f:b\":{}}}");
    json_decref(r);
    r = managedfields_difference(a, a);
    assert_dump(r, "{}");
    assert_true(managedfields_empty(r));
    json_decref(r);
    assert_false(managedfields_empty(a));
    json_decref(a);
    json_decref(b);

    /* path-wise: removing the children leaves the member; removing the
     * member leaves the children */
    a = J("{\"f:spec\":{\".\":{},\"f:a\":{}}}");
    b = J("{\"f:spec\":{\"f:a\":{}}}");
    r = managedfields_difference(a, b);
    assert_dump(r, "{\"f:spec\":{}}");
    json_decref(r);
    json_decref(b);
    b = J("{\"f:spec\":{}}");
    r = managedfields_difference(a, b);
    assert_dump(r, "{\"f:spec\":{\"f:a\":{}}}");
    json_decref(r);
    r = managedfields_intersection(a, b);
    assert_dump(r, "{\"f:spec\":{}}");
    json_decref(r);
    json_decref(a);
    json_decref(b);

    /* keyed items and set values, disjoint sets */
    a = J("{\"f:spec\":{\"f:models\":{\"k:{\\\"name\\\":\\\"x\\\"}\":{\".\":{},\"f:name\":{}}}}}");
    b = J("{\"f:spec\":{\"f:models\":{\"k:{\\\"name\\\":\\\"b\\\"}\":{\".\":{},\"f:name\":{}}},"
          "\"f:fallbacks\":{\"v:\\\"z\\\"\":{}}}}");
    r = managedfields_union(a, b);
    assert_dump(r, "{\"f:spec\":{\"f:fallbacks\":{\"v:\\\"z\\\"\":{}},\"f:models\":{"
                   "\"k:{\\\"name\\\":\\\"b\\\"}\":{\".\":{},\"f:name\":{}},"
                   "\"k:{\\\"name\\\":\\\"x\\\"}\":{\".\":{},\"f:name\":{}}}}}");
    json_decref(r);
    r = managedfields_intersection(a, b);
    assert_true(managedfields_empty(r));
    json_decref(r);
    json_decref(a);
    json_decref(b);
}

/* ---- apply: the documented behaviour ---- */

static void test_apply_create(void **state)
{
    (void)state;
    const char *cfg = AGENT("{\"image\":\"img\",\"models\":[{\"name\":\"m1\"}]}");
    json_t *out = apply_ok(agent, NULL, cfg, "alice", 0);
    assert_int_equal(entry_count(out), 1);
    const json_t *e = entry(out, "alice", "Apply");
    assert_non_null(e);
    assert_string_equal(json_string_value(json_object_get(e, "apiVersion")), "langop.io/v1alpha1");
    assert_string_equal(json_string_value(json_object_get(e, "fieldsType")), "FieldsV1");
    assert_null(json_object_get(e, "subresource"));
    int64_t t;
    const char *time = json_string_value(json_object_get(e, "time"));
    assert_non_null(time);
    assert_int_equal(lo_time_parse(time, &t), 0);
    assert_int_equal(strlen(time), 20);
    assert_json(json_object_get(e, "fieldsV1"),
                "{\"f:spec\":{\"f:image\":{},\"f:models\":{\"k:{\\\"name\\\":\\\"m1\\\"}\":{\".\":{},\"f:name\":{}}}}}");
    /* the object is the configuration plus managedFields */
    json_object_del(json_object_get(out, "metadata"), "managedFields");
    assert_json(out, cfg);
    json_decref(out);
}

static void test_apply_again_is_a_no_op(void **state)
{
    (void)state;
    const char *cfg = AGENT("{\"image\":\"img\",\"models\":[{\"name\":\"m1\"}]}");
    json_t *first = apply_ok(agent, NULL, cfg, "alice", 0);
    /* an old time shows whether the entry is touched */
    json_object_set_new((json_t *)entry(first, "alice", "Apply"), "time", json_string("2020-01-01T00:00:00Z"));
    json_t *second = apply_ok(agent, json_deep_copy(first), cfg, "alice", 0);
    assert_true(json_equal(first, second));
    json_decref(second);
    /* a change of value is a change of the entry's time */
    second = apply_ok(agent, json_deep_copy(first), AGENT("{\"image\":\"img2\",\"models\":[{\"name\":\"m1\"}]}"),
                      "alice", 0);
    assert_string_not_equal(json_string_value(json_object_get(entry(second, "alice", "Apply"), "time")),
                            "2020-01-01T00:00:00Z");
    json_decref(second);
    json_decref(first);
}

static void test_apply_two_managers_different_fields(void **state)
{
    (void)state;
    json_t *o = apply_ok(agent, NULL, AGENT("{\"image\":\"img\"}"), "alice", 0);
    o = apply_ok(agent, o, AGENT("{\"instructions\":\"be brief\"}"), "bob", 0);
    assert_string_equal(spec_str(o, "image"), "img");
    assert_string_equal(spec_str(o, "instructions"), "be brief");
    assert_int_equal(entry_count(o), 2);
    assert_json(fields(o, "alice", "Apply"), "{\"f:spec\":{\"f:image\":{}}}");
    assert_json(fields(o, "bob", "Apply"), "{\"f:spec\":{\"f:instructions\":{}}}");
    json_decref(o);
}

static void test_apply_conflict_without_force(void **state)
{
    (void)state;
    lo_err_t err = {0};
    json_t *o = apply_ok(agent, NULL, AGENT("{\"image\":\"img1\",\"instructions\":\"x\"}"), "alice", 0);
    apply_fails(agent, o, AGENT("{\"image\":\"img2\"}"), "bob", &err);
    assert_int_equal(err.code, 409);
    assert_string_equal(err.reason, "Conflict");
    assert_string_equal(err.message, "Apply failed with 1 conflict: conflict with \"alice\": .spec.image");
    assert_int_equal(json_array_size(json_object_get(err.details, "causes")), 1);
    assert_json(cause(&err, 0), "{\"reason\":\"FieldManagerConflict\",\"message\":\"conflict with \\\"alice\\\"\","
                                "\"field\":\".spec.image\"}");
    lo_err_clear(&err);
    json_decref(o);
}

static void test_apply_conflicts_listed_per_manager(void **state)
{
    (void)state;
    lo_err_t err = {0};
    json_t *o = apply_ok(agent, NULL, AGENT("{\"image\":\"img1\",\"instructions\":\"x\"}"), "alice", 0);
    o = apply_ok(agent, o, AGENT("{\"persona\":\"p\"}"), "carol", 0);
    apply_fails(agent, o, AGENT("{\"image\":\"img2\",\"instructions\":\"y\",\"persona\":\"q\"}"), "bob", &err);
    assert_int_equal(err.code, 409);
    assert_string_equal(err.message, "Apply failed with 3 conflicts: conflicts with \"alice\":\n- .spec.image\n"
                                     "- .spec.instructions\nconflicts with \"carol\":\n- .spec.persona");
    assert_int_equal(json_array_size(json_object_get(err.details, "causes")), 3);
    assert_string_equal(json_string_value(json_object_get(cause(&err, 1), "field")), ".spec.instructions");
    assert_string_equal(json_string_value(json_object_get(cause(&err, 2), "message")), "conflict with \"carol\"");
    lo_err_clear(&err);
    json_decref(o);
}

static void test_apply_force_takes_ownership(void **state)
{
    (void)state;
    json_t *o = apply_ok(agent, NULL, AGENT("{\"image\":\"img1\",\"instructions\":\"x\"}"), "alice", 0);
    o = apply_ok(agent, o, AGENT("{\"persona\":\"p\"}"), "carol", 0);
    o = apply_ok(agent, o, AGENT("{\"image\":\"img2\",\"persona\":\"q\"}"), "bob", 1);
    assert_string_equal(spec_str(o, "image"), "img2");
    assert_string_equal(spec_str(o, "persona"), "q");
    assert_json(fields(o, "bob", "Apply"), "{\"f:spec\":{\"f:image\":{},\"f:persona\":{}}}");
    /* alice keeps what was not taken; carol had nothing else: her entry goes */
    assert_json(fields(o, "alice", "Apply"), "{\"f:spec\":{\"f:instructions\":{}}}");
    assert_null(entry(o, "carol", "Apply"));
    assert_int_equal(entry_count(o), 2);
    json_decref(o);
}

static void test_apply_removes_field_no_longer_applied(void **state)
{
    (void)state;
    json_t *o = apply_ok(agent, NULL, AGENT("{\"image\":\"img\",\"instructions\":\"x\"}"), "alice", 0);
    o = apply_ok(agent, o, AGENT("{\"image\":\"img\"}"), "alice", 0);
    assert_null(json_object_get(json_object_get(o, "spec"), "instructions"));
    assert_json(fields(o, "alice", "Apply"), "{\"f:spec\":{\"f:image\":{}}}");
    assert_int_equal(entry_count(o), 1);
    json_decref(o);
}

/* The last label a manager stops applying goes; metadata, which holds what nobody tracks, stays (it was
 * removed whole, name and uid with it: found by tests/fuzz) */
static void test_apply_removes_last_label_not_metadata(void **state)
{
    (void)state;
    const char *labelled = "{\"apiVersion\":\"langop.io/v1alpha1\",\"kind\":\"LanguageAgent\","
                           "\"metadata\":{\"name\":\"a\",\"labels\":{\"k\":\"v\"}},\"spec\":{\"image\":\"img\"}}";
    json_t *o = apply_ok(agent, NULL, labelled, "alice", 0);
    json_object_set_new(json_object_get(o, "metadata"), "uid", json_string("u1")); /* as the store keeps it */
    o = apply_ok(agent, o, AGENT("{\"image\":\"img\"}"), "alice", 0);
    const json_t *meta = json_object_get(o, "metadata");
    assert_null(json_object_get(meta, "labels"));
    assert_non_null(json_object_get(meta, "name"));
    assert_non_null(json_object_get(meta, "uid"));
    assert_string_equal(json_string_value(json_object_get(meta, "name")), "a");
    assert_string_equal(json_string_value(json_object_get(meta, "uid")), "u1");
    assert_json(fields(o, "alice", "Apply"), "{\"f:spec\":{\"f:image\":{}}}");
    /* a struct of the spec held through its one field goes with it */
    o = apply_ok(agent, o, AGENT("{\"image\":\"img\",\"execution\":{\"mode\":\"task\"}}"), "alice", 0);
    o = apply_ok(agent, o, AGENT("{\"image\":\"img\"}"), "alice", 0);
    assert_null(json_object_get(json_object_get(o, "spec"), "execution"));
    json_decref(o);
}

static void test_apply_shared_field_stays(void **state)
{
    (void)state;
    json_t *o = apply_ok(agent, NULL, AGENT("{\"image\":\"img\",\"instructions\":\"same\"}"), "alice", 0);
    /* the same value is shared ownership, not a conflict */
    o = apply_ok(agent, o, AGENT("{\"instructions\":\"same\"}"), "bob", 0);
    assert_json(fields(o, "alice", "Apply"), "{\"f:spec\":{\"f:image\":{},\"f:instructions\":{}}}");
    assert_json(fields(o, "bob", "Apply"), "{\"f:spec\":{\"f:instructions\":{}}}");
    /* alice stops applying it: bob still owns it, it stays */
    o = apply_ok(agent, o, AGENT("{\"image\":\"img\"}"), "alice", 0);
    assert_string_equal(spec_str(o, "instructions"), "same");
    assert_json(fields(o, "alice", "Apply"), "{\"f:spec\":{\"f:image\":{}}}");
    assert_json(fields(o, "bob", "Apply"), "{\"f:spec\":{\"f:instructions\":{}}}");
    /* bob stops too: nobody owns it, it goes; an empty spec is a value
     * bob now owns */
    o = apply_ok(agent, o, AGENT("{}"), "bob", 0);
    assert_null(json_object_get(json_object_get(o, "spec"), "instructions"));
    assert_dump(fields(o, "bob", "Apply"), "{\"f:spec\":{}}");
    /* applying nothing at all leaves bob without an entry */
    o = apply_ok(agent, o, "{\"apiVersion\":\"langop.io/v1alpha1\",\"kind\":\"LanguageAgent\","
                           "\"metadata\":{\"name\":\"a\"}}", "bob", 0);
    assert_null(entry(o, "bob", "Apply"));
    assert_string_equal(spec_str(o, "image"), "img");
    json_decref(o);
}

static void test_client_side_apply_then_server_side(void **state)
{
    (void)state;
    lo_err_t err = {0};
    /* kubectl apply (client-side) creates the object: an Update entry */
    json_t *o = J(AGENT("{\"image\":\"img1\",\"instructions\":\"x\"}"));
    json_object_set_new(json_object_get(o, "metadata"), "labels", J("{\"tier\":\"gold\"}"));
    managedfields_record_update(agent, NULL, o, "kubectl-client-side-apply", NULL);
    assert_int_equal(entry_count(o), 1);
    const json_t *e = entry(o, "kubectl-client-side-apply", "Update");
    assert_non_null(e);
    assert_string_equal(json_string_value(json_object_get(e, "apiVersion")), "langop.io/v1alpha1");
    /* created containers are members: "." on spec and labels, not on metadata */
    assert_dump(json_object_get(e, "fieldsV1"), "{\"f:metadata\":{\"f:labels\":{\".\":{},\"f:tier\":{}}},"
                                                "\"f:spec\":{\".\":{},\"f:image\":{},\"f:instructions\":{}}}");

    /* kubectl apply --server-side of a different value: conflict */
    apply_fails(agent, o, AGENT("{\"image\":\"img2\"}"), "kubectl", &err);
    assert_int_equal(err.code, 409);
    assert_string_equal(err.message, "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" "
                                     "using langop.io/v1alpha1: .spec.image");
    assert_string_equal(json_string_value(json_object_get(cause(&err, 0), "message")),
                        "conflict with \"kubectl-client-side-apply\" using langop.io/v1alpha1");
    lo_err_clear(&err);

    /* the same value: shared */
    o = apply_ok(agent, o, AGENT("{\"image\":\"img1\"}"), "kubectl", 0);
    assert_json(fields(o, "kubectl", "Apply"), "{\"f:spec\":{\"f:image\":{}}}");
    assert_json(fields(o, "kubectl-client-side-apply", "Update"),
                "{\"f:metadata\":{\"f:labels\":{\".\":{},\"f:tier\":{}}},"
                "\"f:spec\":{\".\":{},\"f:image\":{},\"f:instructions\":{}}}");
    /* kube's order: Apply entries before Update entries */
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(json_object_get(o, "metadata"), "managedFields"), 0),
                            "operation")),
                        "Apply");
    json_decref(o);
}

static void test_list_map_items_owned_per_key(void **state)
{
    (void)state;
    lo_err_t err = {0};
    json_t *o = apply_ok(agent, NULL, AGENT("{\"image\":\"img\",\"models\":[{\"name\":\"m1\",\"role\":\"fallback\"}]}"),
                         "alice", 0);
    o = apply_ok(agent, o, AGENT("{\"models\":[{\"name\":\"m2\",\"role\":\"reasoning\"}]}"), "bob", 0);
    assert_json(json_object_get(json_object_get(o, "spec"), "models"),
                "[{\"name\":\"m1\",\"role\":\"fallback\"},{\"name\":\"m2\",\"role\":\"reasoning\"}]");
    assert_json(fields(o, "bob", "Apply"),
                "{\"f:spec\":{\"f:models\":{\"k:{\\\"name\\\":\\\"m2\\\"}\":{\".\":{},\"f:name\":{},\"f:role\":{}}}}}");

    /* a field of an item another manager owns */
    apply_fails(agent, o, AGENT("{\"models\":[{\"name\":\"m2\"},{\"name\":\"m1\",\"role\":\"primary\"}]}"), "bob",
                &err);
    assert_string_equal(err.message,
                        "Apply failed with 1 conflict: conflict with \"alice\": .spec.models[name=\"m1\"].role");
    assert_string_equal(json_string_value(json_object_get(cause(&err, 0), "field")), ".spec.models[name=\"m1\"].role");
    lo_err_clear(&err);

    /* alice stops applying her item: it goes, bob's stays */
    o = apply_ok(agent, o, AGENT("{\"image\":\"img\"}"), "alice", 0);
    assert_json(json_object_get(json_object_get(o, "spec"), "models"), "[{\"name\":\"m2\",\"role\":\"reasoning\"}]");
    assert_json(fields(o, "alice", "Apply"), "{\"f:spec\":{\"f:image\":{}}}");
    json_decref(o);
}

static void test_list_map_merge_order(void **state)
{
    (void)state;
    json_t *o = apply_ok(agent, NULL, AGENT("{\"models\":[{\"name\":\"a\"},{\"name\":\"b\"},{\"name\":\"c\"}]}"),
                         "alice", 0);
    /* items only in live keep their place; applied items follow the applied order */
    o = apply_ok(agent, o, AGENT("{\"models\":[{\"name\":\"c\",\"priority\":1},{\"name\":\"d\"}]}"), "bob", 0);
    assert_json(json_object_get(json_object_get(o, "spec"), "models"),
                "[{\"name\":\"a\"},{\"name\":\"b\"},{\"name\":\"c\",\"priority\":1},{\"name\":\"d\"}]");
    /* a shared item applied out of its live turn comes when the applied
     * list reaches it, after the live-only items met on the way */
    o = apply_ok(agent, o, AGENT("{\"models\":[{\"name\":\"b\"},{\"name\":\"a\"}]}"), "carol", 0);
    assert_json(json_object_get(json_object_get(o, "spec"), "models"),
                "[{\"name\":\"b\"},{\"name\":\"c\",\"priority\":1},{\"name\":\"d\"},{\"name\":\"a\"}]");
    json_decref(o);
}

static void test_set_items_owned_per_value(void **state)
{
    (void)state;
    json_t *o = apply_ok(model, NULL, MODEL("{\"provider\":\"openai\",\"fallbacks\":[\"a\"]}"), "alice", 0);
    o = apply_ok(model, o, MODEL("{\"fallbacks\":[\"b\",\"a\"]}"), "bob", 0);
    assert_json(json_object_get(json_object_get(o, "spec"), "fallbacks"), "[\"b\",\"a\"]");
    assert_dump(fields(o, "bob", "Apply"), "{\"f:spec\":{\"f:fallbacks\":{\"v:\\\"a\\\"\":{},\"v:\\\"b\\\"\":{}}}}");
    /* bob drops "a": alice still owns it; bob drops "b": nobody does */
    o = apply_ok(model, o, MODEL("{\"fallbacks\":[\"c\"]}"), "bob", 0);
    assert_json(json_object_get(json_object_get(o, "spec"), "fallbacks"), "[\"a\",\"c\"]");
    json_decref(o);
}

static void test_update_takes_changed_fields(void **state)
{
    (void)state;
    json_t *o = apply_ok(agent, NULL, AGENT("{\"image\":\"img\",\"instructions\":\"x\",\"persona\":\"p\"}"), "alice", 0);
    /* kubectl edit changes the image and removes the persona */
    json_t *next = json_deep_copy(o);
    json_object_set_new(json_object_get(next, "spec"), "image", json_string("img2"));
    json_object_del(json_object_get(next, "spec"), "persona");
    managedfields_record_update(agent, o, next, "kubectl-edit", NULL);
    assert_json(fields(next, "kubectl-edit", "Update"), "{\"f:spec\":{\"f:image\":{}}}");
    assert_json(fields(next, "alice", "Apply"), "{\"f:spec\":{\"f:instructions\":{}}}");
    assert_int_equal(entry_count(next), 2);

    /* an update that changes nothing records nothing */
    json_t *same = json_deep_copy(next);
    managedfields_record_update(agent, next, same, "someone", NULL);
    assert_null(entry(same, "someone", "Update"));
    assert_true(json_equal(same, next));
    json_decref(same);

    /* the Update manager owns instructions now; alice stops applying it: it stays */
    json_t *later = json_deep_copy(next);
    json_object_set_new(json_object_get(later, "spec"), "instructions", json_string("y"));
    managedfields_record_update(agent, next, later, "hpa", NULL);
    assert_null(entry(later, "alice", "Apply"));
    later = apply_ok(agent, later, AGENT("{\"image\":\"img2\"}"), "alice", 0);
    assert_string_equal(spec_str(later, "instructions"), "y");
    json_decref(later);

    /* a client writing managedFields edits them; [{}] clears them, and an
     * absent list keeps the stored ones */
    json_t *cleared = json_deep_copy(next);
    json_object_set_new(json_object_get(cleared, "metadata"), "managedFields", J("[{}]"));
    managedfields_record_update(agent, next, cleared, "kubectl-edit", NULL);
    assert_int_equal(entry_count(cleared), 0);
    assert_null(json_object_get(json_object_get(cleared, "metadata"), "managedFields"));
    json_decref(cleared);
    json_t *kept = json_deep_copy(next);
    json_object_del(json_object_get(kept, "metadata"), "managedFields");
    managedfields_record_update(agent, next, kept, "kubectl-edit", NULL);
    assert_int_equal(entry_count(kept), entry_count(next));
    json_decref(kept);
    json_decref(next);
    json_decref(o);
}

static void test_status_subresource(void **state)
{
    (void)state;
    lo_err_t err = {0};
    json_t *o = apply_ok(model, NULL, MODEL("{\"provider\":\"openai\"}"), "alice", 0);
    json_t *cfg = J("{\"apiVersion\":\"langop.io/v1alpha1\",\"kind\":\"LanguageModel\",\"metadata\":{\"name\":\"m\"},"
                    "\"status\":{\"phase\":\"Ready\",\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]},"
                    "\"spec\":{\"provider\":\"other\"}}");
    json_t *out = NULL;
    assert_int_equal(managedfields_apply(model, o, cfg, "ctrl", 0, "status", &out, &err), 0);
    const json_t *e = entry(out, "ctrl", "Apply");
    assert_string_equal(json_string_value(json_object_get(e, "subresource")), "status");
    /* spec is not the status endpoint's to change */
    assert_json(json_object_get(e, "fieldsV1"),
                "{\"f:status\":{\"f:conditions\":{\"k:{\\\"type\\\":\\\"Ready\\\"}\":{\".\":{},\"f:status\":{},"
                "\"f:type\":{}}},\"f:phase\":{}}}");
    assert_string_equal(spec_str(out, "provider"), "openai");
    json_decref(out);

    /* status sent to the main resource is ignored */
    json_object_set_new(cfg, "spec", J("{\"provider\":\"openai\"}"));
    assert_int_equal(managedfields_apply(model, o, cfg, "bob", 0, NULL, &out, &err), 0);
    assert_null(json_object_get(out, "status"));
    assert_json(fields(out, "bob", "Apply"), "{\"f:spec\":{\"f:provider\":{}}}");
    json_decref(out);
    json_decref(cfg);
    json_decref(o);
}

static void test_apply_bad_configs(void **state)
{
    (void)state;
    lo_err_t err = {0};
    apply_fails(agent, NULL, "{\"metadata\":{\"name\":\"a\",\"managedFields\":[]},\"spec\":{}}", "alice", &err);
    assert_int_equal(err.code, 400);
    assert_string_equal(err.message, "metadata.managedFields must be nil");
    lo_err_clear(&err);

    apply_fails(agent, NULL, AGENT("{\"models\":[{\"role\":\"primary\"}]}"), "alice", &err);
    assert_int_equal(err.code, 400);
    assert_non_null(strstr(err.message, ".spec.models: element 0: "));
    lo_err_clear(&err);

    apply_fails(agent, NULL, AGENT("{\"models\":[{\"name\":\"x\"},{\"name\":\"x\"}]}"), "alice", &err);
    assert_int_equal(err.code, 400);
    assert_non_null(strstr(err.message, ".spec.models: element 1: duplicate entries for key [name=\"x\"]"));
    lo_err_clear(&err);

    apply_fails(agent, NULL, AGENT("{}"), "", &err);
    assert_int_equal(err.code, 400);
    lo_err_clear(&err);
}

/*
 * A create records, for its manager, exactly the fields an update from an
 * empty object records (the create takes a shorter road to the same set):
 * compared on objects with structs, list-maps with one and two keys, sets,
 * atomic lists, empty containers, nulls, and metadata.
 */
static void test_create_records_what_an_update_from_nothing_records(void **state)
{
    (void)state;
    static const struct {
        const char *kind;
        const char *obj;
    } cases[] = {
        {"LanguageAgent", "{\"apiVersion\":\"langop.io/v1alpha1\",\"kind\":\"LanguageAgent\",\"metadata\":"
                          "{\"name\":\"a\",\"namespace\":\"n\",\"labels\":{\"x\":\"y\"},\"annotations\":{},"
                          "\"finalizers\":[\"f1\",\"f2\"],\"uid\":\"u\",\"generation\":1},"
                          "\"spec\":{\"image\":\"i\",\"models\":[{\"name\":\"m\",\"role\":\"primary\"},"
                          "{\"name\":\"n\"}],\"tools\":[{\"name\":\"t\",\"enabled\":true}],\"persona\":\"p\","
                          "\"deployment\":{\"env\":[{\"name\":\"A\",\"value\":\"1\"}],\"resources\":{},"
                          "\"nodeSelector\":{\"a\":\"b\"}},\"execution\":{\"mode\":\"task\","
                          "\"schedule\":\"* * * * *\"},\"ports\":[{\"port\":80}]},\"status\":{\"phase\":\"x\"}}"},
        {"LanguageModel", "{\"apiVersion\":\"langop.io/v1alpha1\",\"kind\":\"LanguageModel\",\"metadata\":"
                          "{\"name\":\"m\",\"namespace\":\"n\"},\"spec\":{\"provider\":\"openai\","
                          "\"modelName\":\"x\",\"params\":{\"a\":{\"b\":1},\"c\":null,\"d\":[]},"
                          "\"fallbacks\":[\"q\",\"r\"],\"rateLimits\":{}}}"},
        {"LanguageCluster", "{\"apiVersion\":\"langop.io/v1alpha1\",\"kind\":\"LanguageCluster\",\"metadata\":"
                            "{\"name\":\"c\"},\"spec\":{\"gateway\":{\"env\":[{\"name\":\"A\",\"valueFrom\":"
                            "{\"secretKeyRef\":{\"name\":\"s\",\"key\":\"k\"}}}],\"tolerations\":[{\"key\":\"k\"}]},"
                            "\"capacity\":{\"maxModels\":3}}}"},
        {"LanguagePersona", "{\"apiVersion\":\"langop.io/v1alpha1\",\"kind\":\"LanguagePersona\",\"metadata\":"
                            "{\"generateName\":\"p-\",\"name\":\"p-1\",\"namespace\":\"n\"},"
                            "\"spec\":{\"tone\":\"t\"}}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        const schema_kind_t *k = schema_kind_by_kind(cases[i].kind);
        json_t *created = J(cases[i].obj), *updated = J(cases[i].obj), *empty = J("{}");
        managedfields_record_update(k, NULL, created, "m", NULL);
        managedfields_record_update(k, empty, updated, "m", NULL);
        const json_t *c = json_object_get(json_object_get(created, "metadata"), "managedFields");
        const json_t *u = json_object_get(json_object_get(updated, "metadata"), "managedFields");
        assert_int_equal(json_array_size(c), 1);
        char *cs = json_dumps(json_object_get(json_array_get(c, 0), "fieldsV1"), JSON_COMPACT);
        char *us = json_dumps(json_object_get(json_array_get(u, 0), "fieldsV1"), JSON_COMPACT);
        if (strcmp(cs, us) != 0)
            fail_msg("%s: create recorded %s, an update from nothing %s", cases[i].kind, cs, us);
        free(cs);
        free(us);
        json_decref(created);
        json_decref(updated);
        json_decref(empty);
    }
}

/* The set of a create (F0) and of an update from nothing (F1) of the same object. */
static void create_and_update_sets(const schema_kind_t *k, const char *text, char **f0, char **f1)
{
    json_t *created = J(text), *updated = J(text), *empty = J("{}");
    managedfields_record_update(k, NULL, created, "m", NULL);
    managedfields_record_update(k, empty, updated, "m", NULL);
    const json_t *c = json_object_get(json_object_get(created, "metadata"), "managedFields");
    const json_t *u = json_object_get(json_object_get(updated, "metadata"), "managedFields");
    *f0 = json_dumps(json_object_get(json_array_get(c, 0), "fieldsV1"), JSON_COMPACT);
    *f1 = json_dumps(json_object_get(json_array_get(u, 0), "fieldsV1"), JSON_COMPACT);
    json_decref(created);
    json_decref(updated);
    json_decref(empty);
}

/* Creates of one shape share the set that creates remember; values that name list items do not. */
static void test_creates_of_one_shape(void **state)
{
    (void)state;
    static const char *const agents[] = {
        "{\"metadata\":{\"name\":\"a\",\"namespace\":\"n\"},\"spec\":{\"image\":\"i\","
        "\"models\":[{\"name\":\"m\"}]}}",
        "{\"metadata\":{\"name\":\"b\",\"namespace\":\"n\"},\"spec\":{\"image\":\"j\","
        "\"models\":[{\"name\":\"m\"}]}}",
        "{\"metadata\":{\"name\":\"c\",\"namespace\":\"n\"},\"spec\":{\"image\":\"i\","
        "\"models\":[{\"name\":\"x\"}]}}",
        "{\"metadata\":{\"name\":\"d\",\"namespace\":\"n\",\"managedFields\":[]},\"spec\":{\"image\":1,"
        "\"models\":[{\"name\":\"x\"}]}}",
        "{\"metadata\":{\"name\":\"e\",\"namespace\":\"n\",\"labels\":{\"a\":\"b\"}},\"spec\":{\"image\":\"i\","
        "\"models\":[{\"name\":\"x\"}]}}",
    };
    char *first[5];
    for (int pass = 0; pass < 2; pass++) { /* the second pass finds every set remembered */
        for (size_t i = 0; i < 5; i++) {
            char *f0, *f1;
            create_and_update_sets(agent, agents[i], &f0, &f1);
            if (strcmp(f0, f1) != 0)
                fail_msg("pass %d, agent %zu: create recorded %s, an update from nothing %s", pass, i, f0, f1);
            if (pass == 0)
                first[i] = f0;
            else
                assert_string_equal(f0, first[i]);
            if (pass == 1)
                free(f0);
            free(f1);
        }
    }
    assert_string_equal(first[0], first[1]);                /* another value, the same set */
    assert_true(strcmp(first[0], first[2]) != 0);           /* another list item */
    assert_non_null(strstr(first[2], "k:{\\\"name\\\":\\\"x\\\"}"));
    assert_true(strcmp(first[4], first[2]) != 0);           /* one field more */
    for (size_t i = 0; i < 5; i++)
        free(first[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_of_agent_shape),
        cmocka_unit_test(test_set_of_model_set_and_empty),
        cmocka_unit_test(test_set_of_multi_key),
        cmocka_unit_test(test_set_algebra),
        cmocka_unit_test(test_apply_create),
        cmocka_unit_test(test_apply_again_is_a_no_op),
        cmocka_unit_test(test_apply_two_managers_different_fields),
        cmocka_unit_test(test_apply_conflict_without_force),
        cmocka_unit_test(test_apply_conflicts_listed_per_manager),
        cmocka_unit_test(test_apply_force_takes_ownership),
        cmocka_unit_test(test_apply_removes_field_no_longer_applied),
        cmocka_unit_test(test_apply_removes_last_label_not_metadata),
        cmocka_unit_test(test_apply_shared_field_stays),
        cmocka_unit_test(test_client_side_apply_then_server_side),
        cmocka_unit_test(test_list_map_items_owned_per_key),
        cmocka_unit_test(test_list_map_merge_order),
        cmocka_unit_test(test_set_items_owned_per_value),
        cmocka_unit_test(test_update_takes_changed_fields),
        cmocka_unit_test(test_status_subresource),
        cmocka_unit_test(test_apply_bad_configs),
        cmocka_unit_test(test_create_records_what_an_update_from_nothing_records),
        cmocka_unit_test(test_creates_of_one_shape),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
