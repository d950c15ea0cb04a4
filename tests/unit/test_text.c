/* test_text.c - text from a request made safe to send back (langop/text.h), and the error channel using it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "langop/core/common.h"
#include "langop/core/text.h"

#define FFFD "\xEF\xBF\xBD"

static const struct {
    const char *in, *repaired;
} cases[] = {
    {"", ""},
    {"plain ascii", "plain ascii"},
    {"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80", "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"}, /* 2, 3, 4 bytes */
    {"\xFF", FFFD},                                         /* never a UTF-8 byte */
    {"a\x80z", "a" FFFD "z"},                               /* stray continuation */
    {"\xC3(", FFFD "("},                                    /* bad continuation */
    {"\xC0\xAF", FFFD FFFD},                                /* overlong '/' */
    {"\xE0\x80\xAF", FFFD FFFD FFFD},                       /* overlong, 3 bytes */
    {"\xED\xA0\x80", FFFD FFFD FFFD},                       /* a UTF-16 surrogate */
    {"\xF4\x90\x80\x80", FFFD FFFD FFFD FFFD},              /* above U+10FFFF */
    {"\xF0\x9F\x98", FFFD FFFD FFFD},                       /* cut short */
    {"ok\xE2\x82", "ok" FFFD FFFD},
};

static void test_repair(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = strlen(cases[i].in);
        assert_int_equal(text_utf8_valid(cases[i].in, n), strcmp(cases[i].in, cases[i].repaired) == 0);
        char *out = text_utf8_repair(cases[i].in, n);
        assert_string_equal(out, cases[i].repaired);
        assert_true(text_utf8_valid(out, strlen(out)));
        free(out);
        char buf[64];
        snprintf(buf, sizeof(buf), "%s", cases[i].in);
        text_utf8_repair_in_place(buf, sizeof(buf));
        assert_string_equal(buf, cases[i].repaired);
    }
}

/* A repair that does not fit stops at a character boundary, never in one. */
static void test_repair_in_place_truncates_whole_characters(void **state)
{
    (void)state;
    char buf[8] = "ab\xFF\xFF\xFF"; /* needs 2 + 9 bytes */
    text_utf8_repair_in_place(buf, sizeof(buf));
    assert_string_equal(buf, "ab" FFFD);
    /* what snprintf leaves when it cuts a character in two */
    char cut[5];
    const char *euro = "abc\xE2\x82\xAC";
    memcpy(cut, euro, 4); /* what snprintf leaves in 5 bytes */
    cut[4] = '\0';
    text_utf8_repair_in_place(cut, sizeof(cut));
    assert_true(text_utf8_valid(cut, strlen(cut)));
    assert_int_equal(strncmp(cut, "abc", 3), 0);
}

static void test_header_values(void **state)
{
    (void)state;
    char *v = text_header_value("x\r\nX-Injected: yes\x00");
    assert_string_equal(v, "x  X-Injected: yes");
    free(v);
    v = text_header_value("tab\tkept, del\x7F and bell\a gone, \xFF repaired");
    assert_string_equal(v, "tab\tkept, del  and bell  gone, " FFFD " repaired");
    free(v);
    v = text_header_quoted("say \"hi\" \\ \n");
    assert_string_equal(v, "say \\\"hi\\\" \\\\  ");
    free(v);
}

/* The error channel: what it holds is valid UTF-8, whatever was quoted. */
static void test_error_channel(void **state)
{
    (void)state;
    lo_err_t err = {0};
    lo_err_set(&err, 404, "NotFound", "languagemodels \"%s\" not found", "a\xFF\xC3");
    assert_string_equal(err.message, "languagemodels \"a" FFFD FFFD "\" not found");
    lo_err_add_cause(&err, "FieldValueInvalid", "bad \xED\xA0\x80", "spec.\xFF");
    json_t *cause = json_array_get(json_object_get(err.details, "causes"), 0);
    assert_non_null(cause);
    assert_string_equal(json_string_value(json_object_get(cause, "message")), "bad " FFFD FFFD FFFD);
    assert_string_equal(json_string_value(json_object_get(cause, "field")), "spec." FFFD);
    char *text = json_dumps(err.details, JSON_COMPACT);
    assert_non_null(text); /* jansson encodes it: nothing invalid got in */
    free(text);
    lo_err_clear(&err);

    /* a message cut at the buffer's end in the middle of a character */
    char big[LO_ERR_MESSAGE_MAX * 2];
    memset(big, 'a', sizeof(big));
    memcpy(big + LO_ERR_MESSAGE_MAX - 3, "\xE2\x82\xAC\xE2\x82\xAC", 6);
    big[sizeof(big) - 1] = '\0';
    lo_err_set(&err, 400, "BadRequest", "%s", big);
    assert_true(text_utf8_valid(err.message, strlen(err.message)));
    json_t *v = lo_json_text("\xFF");
    assert_non_null(v);
    assert_string_equal(json_string_value(v), FFFD);
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_repair),
        cmocka_unit_test(test_repair_in_place_truncates_whole_characters),
        cmocka_unit_test(test_header_values),
        cmocka_unit_test(test_error_channel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
