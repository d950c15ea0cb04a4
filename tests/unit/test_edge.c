/* test_edge.c - the HTTP/1.x framing checks of the HTTP edge (langop/http/edge.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "langop/http/edge.h"

#define LINE "POST /apis/x HTTP/1.1\r\n"

static void test_framing_table(void **state)
{
    (void)state;
    static const struct {
        const char *head;
        int minor;
        const char *refused; /* NULL: accepted; else a part of the message */
    } cases[] = {
        {LINE "Host: a\r\nContent-Length: 5\r\n\r\nhello", 1, NULL},
        {LINE "host: a\r\ncontent-length: 5\r\ncontent-length: 5\r\n\r\n", 1, NULL},
        {LINE "Host: a\r\nContent-Length: 5, 5\r\n\r\n", 1, NULL},
        {LINE "Host: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 1, NULL},
        {LINE "Host: a\nContent-Length: 0\n\n", 1, NULL},          /* bare LF lines, as h2o's parser takes them */
        {"GET / HTTP/1.0\r\n\r\n", 0, NULL},                       /* HTTP/1.0: Host optional */
        {LINE "Host: a\r\n\r\nHost: b\r\n", 1, NULL},               /* the body is not headers */
        {LINE "Host: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 1, "both"},
        {LINE "Host: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 1, "both"},
        {LINE "Host: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 1, "Content-Length"},
        {LINE "Host: a\r\nContent-Length: 5, 6\r\n\r\n", 1, "Content-Length"},
        {LINE "Host: a\r\nContent-Length: 5x\r\n\r\n", 1, "Content-Length"},
        {LINE "Host: a\r\nContent-Length: \r\n\r\n", 1, NULL},      /* no value: h2o's own 400 */
        {LINE "Host: a\r\nContent-Length: 99999999999999999999\r\n\r\n", 1, "Content-Length"},
        {LINE "Host: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 1, "Transfer-Encoding"},
        {LINE "Content-Length: 0\r\n\r\n", 1, "missing required Host"},
        {LINE "Host: a\r\nHOST: b\r\n\r\n", 1, "more than one Host"},
        {"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 0, "more than one Host"},
        {LINE "Host: a\r\nX-A: 1\r\n  continued\r\n\r\n", 1, "folding"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        lo_err_t err = {0};
        int rc = edge_http1_framing_check(cases[i].head, strlen(cases[i].head), cases[i].minor, &err);
        if (cases[i].refused == NULL) {
            if (rc != 0)
                fail_msg("case %zu refused: %s", i, err.message);
        } else {
            if (rc != -1 || err.code != 400 || strstr(err.message, cases[i].refused) == NULL)
                fail_msg("case %zu: rc %d, code %d, message \"%s\", want 400 with \"%s\"", i, rc, err.code,
                         err.message, cases[i].refused);
            assert_string_equal(err.reason, "BadRequest");
        }
        lo_err_clear(&err);
    }
}

/* The check reads only len bytes: a block cut before its blank line is not read past. */
static void test_framing_bounded(void **state)
{
    (void)state;
    const char head[] = LINE "Host: a\r\nHost: b\r\n\r\n";
    size_t cut = strlen(LINE "Host: a\r\n");
    char *copy = malloc(cut);
    memcpy(copy, head, cut);
    lo_err_t err = {0};
    assert_int_equal(edge_http1_framing_check(copy, cut, 1, &err), 0);
    free(copy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_framing_table),
        cmocka_unit_test(test_framing_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
