/* test_selector.c - label and field selectors (langop/selector.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "langop/core/selector.h"

/* Label sets the match table refers to by index. */
static const char *const label_sets[] = {
    "{}",                                                  /* 0: no labels */
    "{\"app\":\"web\",\"tier\":\"gold\"}",                 /* 1 */
    "{\"app\":\"db\",\"tier\":\"\"}",                      /* 2 */
    "{\"example.com/team\":\"a\",\"app\":\"web\"}",        /* 3 */
    "{\"env\":\"prod\",\"app\":\"in\"}",                   /* 4 */
};
#define NSETS (sizeof(label_sets) / sizeof(label_sets[0]))

static void test_label_match_table(void **state)
{
    (void)state;
    static const struct {
        const char *sel;
        const char *want; /* '1'/'0' per label set */
    } cases[] = {
        {"", "11111"},
        {"   ", "11111"},
        {"app=web", "01010"},
        {"app==web", "01010"},
        {" app = web ", "01010"},
        {"app!=web", "10101"},
        {"app", "01111"},
        {"!app", "10000"},
        {" ! app ", "10000"},
        {"tier", "01100"},
        {"tier=", "00100"},
        {"tier==", "00100"},
        {"tier!=", "11011"},
        {"app in (web,db)", "01110"},
        {"app in(web , db )", "01110"},
        {"app notin (web,db)", "10001"},
        {"app in (web),tier=gold", "01000"},
        {"app=web,!tier", "00010"},
        {"app,tier,app=db", "00100"},
        {"tier in (gold,)", "01100"},
        {"tier in (,gold)", "01100"},
        {"example.com/team=a", "00010"},
        {"example.com/team", "00010"},
        {"!example.com/team", "11101"},
        {"app=in", "00001"},
        {"app in (in, notin)", "00001"},
        {"env=prod,app notin (web)", "00001"},
        {"missing!=x", "11111"},
        {"missing notin (x)", "11111"},
        {"missing in (x)", "00000"},
        {"app=WEB", "00000"},
        {"a.b-c_d=x", "00000"},
    };
    json_t *sets[NSETS];
    for (size_t i = 0; i < NSETS; i++)
        sets[i] = json_loads(label_sets[i], 0, NULL);

    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        lo_err_t err = {0};
        label_selector_t *sel = label_selector_parse(cases[c].sel, &err);
        if (sel == NULL)
            fail_msg("\"%s\": unexpected error %s", cases[c].sel, err.message);
        for (size_t i = 0; i < NSETS; i++) {
            int got = label_selector_matches(sel, sets[i]);
            if (got != (cases[c].want[i] == '1'))
                fail_msg("\"%s\" on %s: got %d", cases[c].sel, label_sets[i], got);
        }
        label_selector_free(sel);
    }
    for (size_t i = 0; i < NSETS; i++)
        json_decref(sets[i]);
}

static void test_label_null_labels(void **state)
{
    (void)state;
    label_selector_t *sel = label_selector_parse("a!=b,!c", NULL);
    assert_non_null(sel);
    assert_true(label_selector_matches(sel, NULL));
    assert_false(label_selector_empty(sel));
    label_selector_free(sel);
    sel = label_selector_parse("a", NULL);
    assert_false(label_selector_matches(sel, NULL));
    label_selector_free(sel);
    sel = label_selector_parse(NULL, NULL);
    assert_non_null(sel);
    assert_true(label_selector_empty(sel));
    assert_true(label_selector_matches(sel, NULL));
    label_selector_free(sel);
    label_selector_free(NULL);
}

static void test_label_errors(void **state)
{
    (void)state;
    char long_name[80], long_value[80], long_prefix[300];
    memset(long_name, 'a', 64);
    strcpy(long_name + 64, "=x");
    memcpy(long_value, "k=", 2);
    memset(long_value + 2, 'b', 64);
    long_value[66] = '\0';
    memset(long_prefix, 'p', 254);
    strcpy(long_prefix + 254, "/k");

    static const struct {
        const char *sel;
        const char *want;
    } fixed[] = {
        {",", "found ',', expected: identifier"},
        {"a,", "expected: identifier"},
        {"a,,b", "found ','"},
        {"=x", "found '='"},
        {"a b", "found 'b', expected: '=', '!=', '==', 'in', 'notin'"},
        {"a in b", "expected: '('"},
        {"a in (b", "expected: ',' or ')'"},
        {"a in (b c)", "found 'c'"},
        {"a notin", "expected: '('"},
        {"!a=b", "found '='"},
        {"!", "expected: identifier"},
        {"a=(b)", "found '('"},
        {"-a=b", "invalid label key \"-a\""},
        {"a-=b", "start and end with an alphanumeric"},
        {"a$=b", "alphanumeric characters"},
        {"a/b/c=d", "single '/'"},
        {"/a=b", "prefix part must be non-empty"},
        {"Example.com/a=b", "lowercase RFC 1123"},
        {"ex..com/a=b", "RFC 1123"},
        {"example.com/=b", "name part must be non-empty"},
        {"a=-b", "invalid label value: \"-b\""},
        {"a=b$", "at key: \"a\""},
        {"a in (ok,b@d)", "invalid label value"},
        {"a=b=c", "found '='"},
        {"a>1", "invalid label key"},
        {"tier in ()", "values set can't be empty"},
        {"tier notin ( )", "values set can't be empty"},
    };
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        lo_err_t err = {0};
        label_selector_t *sel = label_selector_parse(fixed[i].sel, &err);
        if (sel != NULL)
            fail_msg("\"%s\": expected an error", fixed[i].sel);
        assert_int_equal(err.code, 400);
        assert_string_equal(err.reason, "BadRequest");
        if (strstr(err.message, fixed[i].want) == NULL)
            fail_msg("\"%s\": message \"%s\" lacks \"%s\"", fixed[i].sel, err.message, fixed[i].want);
        lo_err_clear(&err);
    }
    const char *lengthy[] = {long_name, long_value, long_prefix};
    const char *why[] = {"no more than 63", "no more than 63", "no more than 253"};
    for (size_t i = 0; i < 3; i++) {
        lo_err_t err = {0};
        assert_null(label_selector_parse(lengthy[i], &err));
        assert_int_equal(err.code, 400);
        if (strstr(err.message, why[i]) == NULL)
            fail_msg("\"%s\": message \"%s\"", lengthy[i], err.message);
        lo_err_clear(&err);
    }
    /* the limits themselves are fine */
    long_name[63] = '\0';
    long_value[63 + 2] = '\0';
    long_prefix[253] = '/';
    long_prefix[254] = 'k';
    long_prefix[255] = '\0';
    for (size_t i = 0; i < 3; i++) {
        label_selector_t *sel = label_selector_parse(lengthy[i], NULL);
        if (sel == NULL)
            fail_msg("\"%s\" should parse", lengthy[i]);
        label_selector_free(sel);
    }
    /* "a =" selects the empty value */
    label_selector_t *sel = label_selector_parse("a =", NULL);
    assert_non_null(sel);
    json_t *labels = json_pack("{s:s}", "a", "");
    assert_true(label_selector_matches(sel, labels));
    json_decref(labels);
    label_selector_free(sel);
}

static const char *const supported[] = {"metadata.name", "metadata.namespace", "spec.provider", "status.phase",
                                        "spec.replicas", "spec.suspend", NULL};

static void test_field_match_table(void **state)
{
    (void)state;
    json_t *obj = json_loads("{\"metadata\":{\"name\":\"m1\",\"namespace\":\"ns\"},"
                             "\"spec\":{\"provider\":\"openai\",\"replicas\":3,\"suspend\":false}}",
                             0, NULL);
    static const struct {
        const char *sel;
        int want;
    } cases[] = {
        {"", 1},
        {"metadata.name=m1", 1},
        {"metadata.name==m1", 1},
        {"metadata.name!=m1", 0},
        {"metadata.name=m2", 0},
        {"metadata.name!=m2", 1},
        {"metadata.name=m1,metadata.namespace=ns", 1},
        {"metadata.name=m1,metadata.namespace=other", 0},
        {"metadata.name=m1,", 1},
        {" metadata.name =m1", 1},
        {"metadata.name= m1", 0}, /* values are taken as written */
        {"spec.replicas=3", 1},
        {"spec.suspend=false", 1},
        {"spec.suspend!=true", 1},
        {"status.phase=", 1},    /* missing reads as "" */
        {"status.phase!=", 0},
        {"spec.provider=openai", 1},
        {"metadata.namespace=", 0},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        lo_err_t err = {0};
        field_selector_t *sel = field_selector_parse(cases[c].sel, supported, &err);
        if (sel == NULL)
            fail_msg("\"%s\": unexpected error %s", cases[c].sel, err.message);
        if (field_selector_matches(sel, obj) != cases[c].want)
            fail_msg("\"%s\": expected %d", cases[c].sel, cases[c].want);
        field_selector_free(sel);
    }
    json_decref(obj);
}

static void test_field_escapes_and_exact(void **state)
{
    (void)state;
    json_t *obj = json_pack("{s:{s:s}}", "metadata", "name", "a,b=c\\d");
    field_selector_t *sel = field_selector_parse("metadata.name=a\\,b\\=c\\\\d", supported, NULL);
    assert_non_null(sel);
    assert_true(field_selector_matches(sel, obj));
    assert_string_equal(field_selector_exact(sel, "metadata.name"), "a,b=c\\d");
    assert_null(field_selector_exact(sel, "metadata.namespace"));
    field_selector_free(sel);
    json_decref(obj);

    sel = field_selector_parse("metadata.namespace!=x,metadata.namespace==prod,metadata.name=n", supported, NULL);
    assert_non_null(sel);
    assert_string_equal(field_selector_exact(sel, "metadata.namespace"), "prod");
    assert_string_equal(field_selector_exact(sel, "metadata.name"), "n");
    field_selector_free(sel);

    sel = field_selector_parse("metadata.name!=n", supported, NULL);
    assert_null(field_selector_exact(sel, "metadata.name"));
    field_selector_free(sel);

    sel = field_selector_parse(NULL, supported, NULL);
    assert_non_null(sel);
    assert_true(field_selector_matches(sel, NULL));
    field_selector_free(sel);
    field_selector_free(NULL);
}

static void test_field_errors(void **state)
{
    (void)state;
    static const struct {
        const char *sel;
        const char *want;
    } cases[] = {
        {"spec.foo=x", "field label not supported: spec.foo"},
        {"metadata.name=x,spec.model=y", "field label not supported: spec.model"},
        {"=x", "field label not supported: "},
        {"metadata.name", "invalid selector: 'metadata.name'; can't understand 'metadata.name'"},
        {"metadata.name=x,bogus", "can't understand 'bogus'"},
        {"metadata.name=a\\qb", "invalid escape"},
        {"metadata", "can't understand"},
        {"metadata.name.x=1", "not supported"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        lo_err_t err = {0};
        field_selector_t *sel = field_selector_parse(cases[i].sel, supported, &err);
        if (sel != NULL)
            fail_msg("\"%s\": expected an error", cases[i].sel);
        assert_int_equal(err.code, 400);
        assert_string_equal(err.reason, "BadRequest");
        if (strstr(err.message, cases[i].want) == NULL)
            fail_msg("\"%s\": message \"%s\" lacks \"%s\"", cases[i].sel, err.message, cases[i].want);
        lo_err_clear(&err);
    }
    /* with no supported list every field is refused */
    lo_err_t err = {0};
    assert_null(field_selector_parse("metadata.name=x", NULL, &err));
    assert_int_equal(err.code, 400);
    lo_err_clear(&err);
}

/* Hostile selectors: a selector or a 400, never a crash or a leak. */
static void test_fuzz(void **state)
{
    (void)state;
    static const char alphabet[] = "ab=!(),  in notin/.-_\\\xff";
    json_t *labels = json_pack("{s:s,s:s}", "a", "b", "ab", "");
    json_t *obj = json_pack("{s:{s:s}}", "metadata", "name", "a");
    unsigned int rnd = 4242;
    char buf[40];
    for (int round = 0; round < 5000; round++) {
        size_t len = (size_t)round % (sizeof(buf) - 1);
        for (size_t i = 0; i < len; i++) {
            rnd = rnd * 1103515245u + 12345u;
            buf[i] = alphabet[(rnd >> 16) % (sizeof(alphabet) - 1)];
        }
        buf[len] = '\0';
        lo_err_t err = {0};
        label_selector_t *ls = label_selector_parse(buf, &err);
        if (ls != NULL)
            (void)label_selector_matches(ls, labels);
        else
            assert_int_equal(err.code, 400);
        label_selector_free(ls);
        field_selector_t *fs = field_selector_parse(buf, supported, &err);
        if (fs != NULL)
            (void)field_selector_matches(fs, obj);
        else
            assert_int_equal(err.code, 400);
        field_selector_free(fs);
        lo_err_clear(&err);
    }
    json_decref(labels);
    json_decref(obj);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_label_match_table), cmocka_unit_test(test_label_null_labels),
        cmocka_unit_test(test_label_errors),      cmocka_unit_test(test_field_match_table),
        cmocka_unit_test(test_field_escapes_and_exact), cmocka_unit_test(test_field_errors),
        cmocka_unit_test(test_fuzz),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
