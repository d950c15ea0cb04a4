/*
 * test_status.c - the Status bodies that kubectl prints as
 *   Error from server (<reason>): <message>
 * checked against the wording of kube-apiserver for the same condition.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "langop/core/status.h"

/* Asserts the fixed envelope of a Status and its code, reason and message. */
static void assert_status(const json_t *st, const char *status, int code, const char *reason, const char *message)
{
    assert_non_null(st);
    assert_string_equal(json_string_value(json_object_get(st, "kind")), "Status");
    assert_string_equal(json_string_value(json_object_get(st, "apiVersion")), "v1");
    assert_true(json_is_object(json_object_get(st, "metadata")));
    assert_int_equal(json_object_size(json_object_get(st, "metadata")), 0);
    assert_string_equal(json_string_value(json_object_get(st, "status")), status);
    if (code) {
        assert_int_equal(json_integer_value(json_object_get(st, "code")), code);
        assert_string_equal(json_string_value(json_object_get(st, "reason")), reason);
    }
    if (message)
        assert_string_equal(json_string_value(json_object_get(st, "message")), message);
}

/* details name (absent when name is NULL), group and kind. */
static void assert_details(const json_t *st, const char *name, const char *group, const char *kind)
{
    const json_t *d = json_object_get(st, "details");
    assert_true(json_is_object(d));
    if (name)
        assert_string_equal(json_string_value(json_object_get(d, "name")), name);
    else
        assert_null(json_object_get(d, "name"));
    assert_string_equal(json_string_value(json_object_get(d, "group")), group);
    assert_string_equal(json_string_value(json_object_get(d, "kind")), kind);
}

typedef void (*object_error_fn)(lo_err_t *, const char *, const char *, const char *);

static void conflict_modified(lo_err_t *err, const char *resource, const char *group, const char *name)
{
    status_conflict(err, resource, group, name,
                    "the object has been modified; please apply your changes to the latest version and try again");
}

static void test_object_errors(void **state)
{
    (void)state;
    static const struct {
        object_error_fn fill;
        const char *resource, *name;
        int code;
        const char *reason, *message;
    } cases[] = {
        { status_not_found, "languagemodels", "x", 404, "NotFound", "languagemodels.langop.io \"x\" not found" },
        { status_not_found, "languageclusters", "prod", 404, "NotFound",
          "languageclusters.langop.io \"prod\" not found" },
        { status_already_exists, "languageagents", "a-1", 409, "AlreadyExists",
          "languageagents.langop.io \"a-1\" already exists" },
        { conflict_modified, "languagemodels", "x", 409, "Conflict",
          "Operation cannot be fulfilled on languagemodels.langop.io \"x\": the object has been modified; please "
          "apply your changes to the latest version and try again" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        lo_err_t err = { 0 };
        cases[i].fill(&err, cases[i].resource, "langop.io", cases[i].name);
        json_t *st = status_from_err(&err);
        assert_status(st, "Failure", cases[i].code, cases[i].reason, cases[i].message);
        assert_details(st, cases[i].name, "langop.io", cases[i].resource);
        json_decref(st);
        lo_err_clear(&err);
    }
}

static void test_not_found_without_name_has_no_name_detail(void **state)
{
    (void)state;
    lo_err_t err = { 0 };
    status_not_found(&err, "languagemodels", "langop.io", "");
    json_t *st = status_from_err(&err);
    assert_status(st, "Failure", 404, "NotFound", NULL);
    assert_details(st, NULL, "langop.io", "languagemodels");
    json_decref(st);
    lo_err_clear(&err);
}

static void test_fill_functions_accept_null_err(void **state)
{
    (void)state;
    status_not_found(NULL, "languagemodels", "langop.io", "x");
    status_already_exists(NULL, "languagemodels", "langop.io", "x");
    status_conflict(NULL, "languagemodels", "langop.io", "x", "why");
    status_invalid(NULL, "LanguageModel", "langop.io", "x");
    status_bad_request(NULL, "bad %d", 1);
    status_internal(NULL, "broken %s", "here");
}

static void test_unset_error_reads_as_internal(void **state)
{
    (void)state;
    lo_err_t err = { 0 };
    json_t *st = status_from_err(&err);
    assert_status(st, "Failure", 500, "InternalError", NULL);
    const char *msg = json_string_value(json_object_get(st, "message"));
    assert_non_null(msg);
    assert_true(strlen(msg) > 0);
    assert_null(json_object_get(st, "details"));
    json_decref(st);

    st = status_from_err(NULL);
    assert_status(st, "Failure", 500, "InternalError", NULL);
    json_decref(st);
}

static void test_details_are_copied(void **state)
{
    (void)state;
    lo_err_t err = { 0 };
    status_not_found(&err, "languagemodels", "langop.io", "x");
    json_t *st = status_from_err(&err);
    lo_err_clear(&err); /* the Status must not depend on err any more */
    assert_details(st, "x", "langop.io", "languagemodels");
    json_decref(st);
}

static void test_bad_request_and_internal(void **state)
{
    (void)state;
    lo_err_t err = { 0 };
    status_bad_request(&err, "dryRun value %s is not supported", "Some");
    json_t *st = status_from_err(&err);
    assert_status(st, "Failure", 400, "BadRequest", "dryRun value Some is not supported");
    assert_null(json_object_get(st, "details"));
    json_decref(st);
    lo_err_clear(&err);

    status_internal(&err, "store: %s", "disk I/O error");
    st = status_from_err(&err);
    assert_status(st, "Failure", 500, "InternalError", "store: disk I/O error");
    json_decref(st);
    lo_err_clear(&err);
}

static void test_success(void **state)
{
    (void)state;
    json_t *st = status_success("x", "langop.io", "languagemodels", "0b7a3c9e-1111-4222-8333-444455556666");
    assert_status(st, "Success", 0, NULL, NULL);
    assert_details(st, "x", "langop.io", "languagemodels");
    assert_string_equal(json_string_value(json_object_get(json_object_get(st, "details"), "uid")),
                        "0b7a3c9e-1111-4222-8333-444455556666");
    assert_null(json_object_get(st, "reason"));
    json_decref(st);

    st = status_success("x", "langop.io", "languagemodels", NULL);
    assert_status(st, "Success", 0, NULL, NULL);
    assert_null(json_object_get(json_object_get(st, "details"), "uid"));
    json_decref(st);
}

/* 422: one cause is printed bare, several are joined in brackets (apimachinery's aggregate). */
static void test_invalid_messages(void **state)
{
    (void)state;
    static const struct {
        size_t ncauses;
        const char *fields[3];
        const char *messages[3];
        const char *want;
    } cases[] = {
        { 1, { "spec.provider" }, { "Required value" },
          "LanguageModel.langop.io \"x\" is invalid: spec.provider: Required value" },
        { 2, { "spec.provider", "spec.timeout" },
          { "Required value", "Invalid value: \"5 minutes\": must be a duration" },
          "LanguageModel.langop.io \"x\" is invalid: [spec.provider: Required value, spec.timeout: Invalid value: "
          "\"5 minutes\": must be a duration]" },
        { 3, { "metadata.name", "metadata.labels", "spec.port" }, { "m1", "m2", "m3" },
          "LanguageModel.langop.io \"x\" is invalid: [metadata.name: m1, metadata.labels: m2, spec.port: m3]" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        lo_err_t err = { 0 };
        for (size_t c = 0; c < cases[i].ncauses; c++)
            lo_err_add_cause(&err, "FieldValueInvalid", cases[i].messages[c], cases[i].fields[c]);
        status_invalid(&err, "LanguageModel", "langop.io", "x");
        json_t *st = status_from_err(&err);
        assert_status(st, "Failure", 422, "Invalid", cases[i].want);
        assert_details(st, "x", "langop.io", "LanguageModel");
        const json_t *causes = json_object_get(json_object_get(st, "details"), "causes");
        assert_int_equal(json_array_size(causes), cases[i].ncauses);
        for (size_t c = 0; c < cases[i].ncauses; c++) {
            const json_t *cause = json_array_get(causes, c);
            assert_string_equal(json_string_value(json_object_get(cause, "reason")), "FieldValueInvalid");
            assert_string_equal(json_string_value(json_object_get(cause, "field")), cases[i].fields[c]);
            assert_string_equal(json_string_value(json_object_get(cause, "message")), cases[i].messages[c]);
        }
        json_decref(st);
        lo_err_clear(&err);
    }
}

/* apimachinery's NewInvalid with no causes says `<kind> "x" is invalid`, without a trailing colon. */
static void test_invalid_without_causes(void **state)
{
    (void)state;
    lo_err_t err = { 0 };
    status_invalid(&err, "LanguageModel", "langop.io", "x");
    int code = err.code;
    char message[LO_ERR_MESSAGE_MAX];
    snprintf(message, sizeof(message), "%s", err.message);
    lo_err_clear(&err); /* before asserting, so that a failure leaks nothing */
    assert_int_equal(code, 422);
    assert_string_equal(message, "LanguageModel.langop.io \"x\" is invalid");
}

/* Many long causes: the message is cut, never overrun, and every cause is still in details. */
static void test_invalid_many_causes(void **state)
{
    (void)state;
    lo_err_t err = { 0 };
    char field[64], msg[200];
    for (int i = 0; i < 100; i++) {
        snprintf(field, sizeof(field), "spec.items[%d].name", i);
        snprintf(msg, sizeof(msg), "Invalid value: \"%0150d\": too long", i);
        lo_err_add_cause(&err, "FieldValueInvalid", msg, field);
    }
    status_invalid(&err, "LanguageAgent", "langop.io", "big");
    assert_int_equal(err.code, 422);
    assert_string_equal(err.reason, "Invalid");
    assert_true(strlen(err.message) < LO_ERR_MESSAGE_MAX);
    const char *prefix = "LanguageAgent.langop.io \"big\" is invalid: [spec.items[0].name: ";
    assert_memory_equal(err.message, prefix, strlen(prefix));
    assert_int_equal(json_array_size(json_object_get(err.details, "causes")), 100);
    lo_err_clear(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_object_errors),
        cmocka_unit_test(test_not_found_without_name_has_no_name_detail),
        cmocka_unit_test(test_fill_functions_accept_null_err),
        cmocka_unit_test(test_unset_error_reads_as_internal),
        cmocka_unit_test(test_details_are_copied),
        cmocka_unit_test(test_bad_request_and_internal),
        cmocka_unit_test(test_success),
        cmocka_unit_test(test_invalid_messages),
        cmocka_unit_test(test_invalid_without_causes),
        cmocka_unit_test(test_invalid_many_causes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
