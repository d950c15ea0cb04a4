/*
 * test_patch.c - JSON patch (RFC 6902 appendix A and the failures kube
 * answers with 400/413/422), JSON merge patch (RFC 7386 section 3 and
 * appendix A) and the refusal of strategic-merge directives.
 *
 * Tables hold JSON with ' for " so they stay readable; j() converts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "langop/registry/patch.h"

/* Parses JSON written with ' for " (new reference; fails the test on bad input). */
static json_t *j(const char *text)
{
    char *s = strdup(text);
    json_error_t e;
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    json_t *v = json_loads(s, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    if (!v)
        fail_msg("bad test JSON %s: %s", s, e.text);
    free(s);
    return v;
}

static void assert_json_equal(const json_t *got, const json_t *want, const char *name)
{
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_ENCODE_ANY | JSON_SORT_KEYS);
        char *w = json_dumps(want, JSON_ENCODE_ANY | JSON_SORT_KEYS);
        print_error("%s:\n  got  %s\n  want %s\n", name, g ? g : "(null)", w);
        free(g);
        free(w);
        fail();
    }
}

/* ------------------------------------------------------- JSON patch --- */

typedef struct {
    const char *name, *doc, *patch, *want;
} json_ok_t;

static const json_ok_t json_ok[] = {
    /* RFC 6902 appendix A */
    { "A.1 add an object member", "{'foo':'bar'}", "[{'op':'add','path':'/baz','value':'qux'}]",
      "{'baz':'qux','foo':'bar'}" },
    { "A.2 add an array element", "{'foo':['bar','baz']}", "[{'op':'add','path':'/foo/1','value':'qux'}]",
      "{'foo':['bar','qux','baz']}" },
    { "A.3 remove an object member", "{'baz':'qux','foo':'bar'}", "[{'op':'remove','path':'/baz'}]",
      "{'foo':'bar'}" },
    { "A.4 remove an array element", "{'foo':['bar','qux','baz']}", "[{'op':'remove','path':'/foo/1'}]",
      "{'foo':['bar','baz']}" },
    { "A.5 replace a value", "{'baz':'qux','foo':'bar'}", "[{'op':'replace','path':'/baz','value':'boo'}]",
      "{'baz':'boo','foo':'bar'}" },
    { "A.6 move a value", "{'foo':{'bar':'baz','waldo':'fred'},'qux':{'corge':'grault'}}",
      "[{'op':'move','from':'/foo/waldo','path':'/qux/thud'}]",
      "{'foo':{'bar':'baz'},'qux':{'corge':'grault','thud':'fred'}}" },
    { "A.7 move an array element", "{'foo':['all','grass','cows','eat']}",
      "[{'op':'move','from':'/foo/1','path':'/foo/3'}]", "{'foo':['all','cows','eat','grass']}" },
    { "A.8 test a value: success", "{'baz':'qux','foo':['a',2,'c']}",
      "[{'op':'test','path':'/baz','value':'qux'},{'op':'test','path':'/foo/1','value':2}]",
      "{'baz':'qux','foo':['a',2,'c']}" },
    { "A.10 add a nested member object", "{'foo':'bar'}",
      "[{'op':'add','path':'/child','value':{'grandchild':{}}}]", "{'foo':'bar','child':{'grandchild':{}}}" },
    { "A.11 ignore unrecognized elements", "{'foo':'bar'}",
      "[{'op':'add','path':'/baz','value':'qux','xyz':123}]", "{'foo':'bar','baz':'qux'}" },
    { "A.14 ~ escape ordering", "{'/':9,'~1':10}", "[{'op':'test','path':'/~01','value':10}]",
      "{'/':9,'~1':10}" },
    { "A.16 add an array value", "{'foo':['bar']}", "[{'op':'add','path':'/foo/-','value':['abc','def']}]",
      "{'foo':['bar',['abc','def']]}" },
    /* beyond the appendix */
    { "empty patch is the identity", "{'a':1}", "[]", "{'a':1}" },
    { "add replaces an existing member", "{'a':1}", "[{'op':'add','path':'/a','value':2}]", "{'a':2}" },
    { "add at index == size appends", "{'l':[1,2]}", "[{'op':'add','path':'/l/2','value':3}]", "{'l':[1,2,3]}" },
    { "add at index 0 prepends", "{'l':[1,2]}", "[{'op':'add','path':'/l/0','value':0}]", "{'l':[0,1,2]}" },
    { "add the whole document", "{'a':1}", "[{'op':'add','path':'','value':{'b':2}}]", "{'b':2}" },
    { "add null is a value, not a removal", "{'a':1}", "[{'op':'add','path':'/b','value':null}]",
      "{'a':1,'b':null}" },
    { "~1 and ~0 in keys", "{'a/b':1,'c~d':2}",
      "[{'op':'remove','path':'/a~1b'},{'op':'replace','path':'/c~0d','value':3}]", "{'c~d':3}" },
    { "the empty key", "{'':1}", "[{'op':'replace','path':'/','value':2}]", "{'':2}" },
    { "'01' is an ordinary object key", "{'01':1}", "[{'op':'remove','path':'/01'}]", "{}" },
    { "replace an array element", "{'l':['a','b','c']}", "[{'op':'replace','path':'/l/1','value':'B'}]",
      "{'l':['a','B','c']}" },
    { "replace the whole document", "{'a':1}", "[{'op':'replace','path':'','value':[1]}]", "[1]" },
    { "move to the same place is a no-op", "{'a':{'b':1}}", "[{'op':'move','from':'/a','path':'/a'}]",
      "{'a':{'b':1}}" },
    { "move up into the parent's place", "{'a':{'b':{'c':1}}}", "[{'op':'move','from':'/a/b','path':'/a'}]",
      "{'a':{'c':1}}" },
    { "move to the end of an array", "{'l':[1,2,3]}", "[{'op':'move','from':'/l/0','path':'/l/-'}]",
      "{'l':[2,3,1]}" },
    { "copy is deep: a later change to the copy leaves the source", "{'a':{'x':1}}",
      "[{'op':'copy','from':'/a','path':'/b'},{'op':'add','path':'/b/y','value':2}]",
      "{'a':{'x':1},'b':{'x':1,'y':2}}" },
    { "copy the whole document into itself", "{'a':1}", "[{'op':'copy','from':'','path':'/self'}]",
      "{'a':1,'self':{'a':1}}" },
    { "copy into an array", "{'l':[1],'v':'x'}", "[{'op':'copy','from':'/v','path':'/l/0'}]",
      "{'l':['x',1],'v':'x'}" },
    { "test: 1 equals 1.0 (RFC 6902 4.6)", "{'n':1}", "[{'op':'test','path':'/n','value':1.0}]", "{'n':1}" },
    { "test: objects equal in any key order", "{'o':{'a':1,'b':[true,null]}}",
      "[{'op':'test','path':'/o','value':{'b':[true,null],'a':1}}]", "{'o':{'a':1,'b':[true,null]}}" },
    { "test the whole document", "{'a':1}", "[{'op':'test','path':'','value':{'a':1}}]", "{'a':1}" },
    { "operations apply in order", "{}",
      "[{'op':'add','path':'/a','value':[]},{'op':'add','path':'/a/-','value':1},"
      "{'op':'test','path':'/a/0','value':1},{'op':'move','from':'/a','path':'/b'}]",
      "{'b':[1]}" },
    { "kubectl label style", "{'metadata':{'name':'x','labels':{'tier':'gold'}}}",
      "[{'op':'replace','path':'/metadata/labels/tier','value':'silver'},"
      "{'op':'add','path':'/metadata/labels/app.kubernetes.io~1name','value':'gw'}]",
      "{'metadata':{'name':'x','labels':{'tier':'silver','app.kubernetes.io/name':'gw'}}}" },
};

static void test_json_ok(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof json_ok / sizeof json_ok[0]; i++) {
        const json_ok_t *c = &json_ok[i];
        json_t *doc = j(c->doc), *before = json_deep_copy(doc), *patch = j(c->patch), *want = j(c->want);
        lo_err_t err = { 0 };
        json_t *got = patch_json(doc, patch, &err);
        if (!got)
            fail_msg("%s: failed with %d %s: %s", c->name, err.code, err.reason, err.message);
        assert_json_equal(got, want, c->name);
        assert_json_equal(doc, before, c->name);
        json_decref(got);
        json_decref(doc);
        json_decref(before);
        json_decref(patch);
        json_decref(want);
    }
}

typedef struct {
    const char *name, *doc, *patch;
    int code;
    const char *reason, *message_part;
} json_err_t;

static const json_err_t json_err[] = {
    /* RFC 6902 appendix A */
    { "A.9 test a value: error", "{'baz':'qux'}", "[{'op':'test','path':'/baz','value':'bar'}]",
      422, "Invalid", "testing value /baz failed" },
    { "A.12 add to a nonexistent target", "{'foo':'bar'}", "[{'op':'add','path':'/baz/bat','value':'qux'}]",
      422, "Invalid", "/baz does not exist" },
    { "A.15 strings and numbers differ", "{'/':9,'~1':10}", "[{'op':'test','path':'/~01','value':'10'}]",
      422, "Invalid", "testing value /~01 failed" },
    /* malformed patches: 400 */
    { "patch is an object", "{}", "{'op':'add','path':'/a','value':1}", 400, "BadRequest", "JSON array" },
    { "patch is a string", "{}", "'add'", 400, "BadRequest", "JSON array" },
    { "operation not an object", "{}", "[[]]", 400, "BadRequest", "operation 0 is not an object" },
    { "op missing", "{}", "[{'path':'/a','value':1}]", 400, "BadRequest", "no \"op\"" },
    { "op not a string", "{}", "[{'op':1,'path':'/a','value':1}]", 400, "BadRequest", "no \"op\"" },
    { "unknown op", "{}", "[{'op':'append','path':'/a','value':1}]", 400, "BadRequest", "unknown op \"append\"" },
    { "op is case sensitive", "{}", "[{'op':'Add','path':'/a','value':1}]", 400, "BadRequest", "unknown op" },
    { "path missing", "{}", "[{'op':'add','value':1}]", 400, "BadRequest", "no \"path\"" },
    { "path not a string", "{}", "[{'op':'remove','path':['a']}]", 400, "BadRequest", "no \"path\"" },
    { "add without value", "{}", "[{'op':'add','path':'/a'}]", 400, "BadRequest", "(add) has no \"value\"" },
    { "replace without value", "{'a':1}", "[{'op':'replace','path':'/a'}]", 400, "BadRequest", "no \"value\"" },
    { "test without value", "{'a':1}", "[{'op':'test','path':'/a'}]", 400, "BadRequest", "no \"value\"" },
    { "move without from", "{'a':1}", "[{'op':'move','path':'/b'}]", 400, "BadRequest", "(move) has no \"from\"" },
    { "copy from not a string", "{'a':1}", "[{'op':'copy','from':5,'path':'/b'}]", 400, "BadRequest", "no \"from\"" },
    { "path without leading slash", "{'a':1}", "[{'op':'remove','path':'a'}]", 400, "BadRequest", "not a JSON pointer" },
    { "bad escape ~2", "{'a':1}", "[{'op':'remove','path':'/a~2'}]", 400, "BadRequest", "not a JSON pointer" },
    { "trailing ~", "{'a':1}", "[{'op':'remove','path':'/a~'}]", 400, "BadRequest", "not a JSON pointer" },
    { "bad from pointer", "{'a':1}", "[{'op':'copy','from':'a','path':'/b'}]", 400, "BadRequest", "\"from\" a" },
    { "move into own child", "{'a':{'b':1}}", "[{'op':'move','from':'/a','path':'/a/b/c'}]", 400, "BadRequest",
      "into its own child" },
    { "move the document into a child", "{'a':1}", "[{'op':'move','from':'','path':'/x'}]", 400, "BadRequest",
      "into its own child" },
    { "malformed later op: nothing applies", "{'a':1}",
      "[{'op':'remove','path':'/a'},{'op':'nope','path':'/a'}]", 400, "BadRequest", "operation 1" },
    /* operations that cannot apply: 422 */
    { "remove a missing key", "{'a':1}", "[{'op':'remove','path':'/b'}]", 422, "Invalid", "path /b does not exist" },
    { "replace a missing key", "{'a':1}", "[{'op':'replace','path':'/b','value':1}]", 422, "Invalid",
      "path /b does not exist" },
    { "remove the whole document", "{'a':1}", "[{'op':'remove','path':''}]", 422, "Invalid", "whole document" },
    { "test a missing key, even against null", "{'a':1}", "[{'op':'test','path':'/b','value':null}]", 422,
      "Invalid", "path /b does not exist" },
    { "test 1 against '1'", "{'a':1}", "[{'op':'test','path':'/a','value':'1'}]", 422, "Invalid", "testing value /a" },
    { "test object with extra member", "{'a':{'x':1,'y':2}}", "[{'op':'test','path':'/a','value':{'x':1}}]", 422,
      "Invalid", "testing value /a" },
    { "test array order matters", "{'a':[1,2]}", "[{'op':'test','path':'/a','value':[2,1]}]", 422, "Invalid",
      "testing value /a" },
    { "test 1.5 against 1", "{'a':1}", "[{'op':'test','path':'/a','value':1.5}]", 422, "Invalid", "testing value" },
    { "add past the end of an array", "{'l':[1]}", "[{'op':'add','path':'/l/2','value':3}]", 422, "Invalid",
      "array of 1 items" },
    { "leading zero index", "{'l':[1,2]}", "[{'op':'remove','path':'/l/01'}]", 422, "Invalid", "/l/01 does not exist" },
    { "negative index", "{'l':[1,2]}", "[{'op':'remove','path':'/l/-1'}]", 422, "Invalid", "does not exist" },
    { "negative add index", "{'l':[1,2]}", "[{'op':'add','path':'/l/-1','value':0}]", 422, "Invalid", "\"-1\"" },
    { "huge index", "{'l':[1,2]}", "[{'op':'add','path':'/l/99999999999999999999','value':0}]", 422, "Invalid",
      "is not an index" },
    { "index just over size_t", "{'l':[1]}", "[{'op':'replace','path':'/l/18446744073709551616','value':0}]", 422,
      "Invalid", "does not exist" },
    { "'-' names no element for remove", "{'l':[1]}", "[{'op':'remove','path':'/l/-'}]", 422, "Invalid",
      "does not exist" },
    { "'-' names no element for test", "{'l':[1]}", "[{'op':'test','path':'/l/-','value':1}]", 422, "Invalid",
      "does not exist" },
    { "non-numeric index", "{'l':[1]}", "[{'op':'add','path':'/l/x','value':1}]", 422, "Invalid", "is not an index" },
    { "index with a sign", "{'l':[1,2]}", "[{'op':'remove','path':'/l/+1'}]", 422, "Invalid", "does not exist" },
    { "walk through a string", "{'a':'s'}", "[{'op':'add','path':'/a/b','value':1}]", 422, "Invalid",
      "/a is not an object or array" },
    { "walk through a number in the middle", "{'a':{'b':1}}", "[{'op':'add','path':'/a/b/c/d','value':1}]", 422,
      "Invalid", "/a/b is not an object or array" },
    { "document is a scalar", "5", "[{'op':'add','path':'/a','value':1}]", 422, "Invalid",
      "the document is not an object or array" },
    { "move from a missing path", "{'a':1}", "[{'op':'move','from':'/b','path':'/c'}]", 422, "Invalid",
      "path /b does not exist" },
    { "move to a missing parent", "{'a':1}", "[{'op':'move','from':'/a','path':'/x/y'}]", 422, "Invalid",
      "/x does not exist" },
    { "copy from a missing path", "{'a':1}", "[{'op':'copy','from':'/b','path':'/c'}]", 422, "Invalid",
      "path /b does not exist" },
    { "failure after successes: nothing applies", "{'a':1}",
      "[{'op':'replace','path':'/a','value':2},{'op':'add','path':'/b','value':3},"
      "{'op':'test','path':'/a','value':1}]", 422, "Invalid", "operation 2 (test): testing value /a failed" },
};

static void test_json_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof json_err / sizeof json_err[0]; i++) {
        const json_err_t *c = &json_err[i];
        json_t *doc = j(c->doc), *before = json_deep_copy(doc), *patch = j(c->patch);
        lo_err_t err = { 0 };
        json_t *got = patch_json(doc, patch, &err);
        if (got)
            fail_msg("%s: applied, want %d", c->name, c->code);
        if (err.code != c->code || strcmp(err.reason, c->reason) != 0 || !strstr(err.message, c->message_part))
            fail_msg("%s: got %d %s \"%s\", want %d %s containing \"%s\"", c->name, err.code, err.reason,
                     err.message, c->code, c->reason, c->message_part);
        assert_json_equal(doc, before, c->name);
        lo_err_clear(&err);
        json_decref(doc);
        json_decref(before);
        json_decref(patch);
    }
}

/* kube's 422 sentence leads, so clients matching kube's message still match. */
static void test_json_error_wording(void **state)
{
    (void)state;
    json_t *doc = j("{'spec':{'model':'a'}}"), *patch = j("[{'op':'test','path':'/spec/model','value':'b'}]");
    lo_err_t err = { 0 };
    assert_null(patch_json(doc, patch, &err));
    assert_string_equal(err.message, "the server rejected our request due to an error in our request: "
                                     "json patch operation 0 (test): testing value /spec/model failed");
    /* err is optional */
    assert_null(patch_json(doc, patch, NULL));
    json_decref(doc);
    json_decref(patch);
}

/* The result owns its values: changing it changes neither the document nor the patch. */
static void test_json_no_sharing(void **state)
{
    (void)state;
    json_t *doc = j("{'a':{'x':1}}"), *patch = j("[{'op':'add','path':'/b','value':{'y':2}}]");
    json_t *got = patch_json(doc, patch, NULL);
    assert_non_null(got);
    json_object_set_new(json_object_get(got, "a"), "x", json_integer(9));
    json_object_set_new(json_object_get(got, "b"), "y", json_integer(9));
    json_decref(got);
    got = j("{'a':{'x':1}}");
    assert_json_equal(doc, got, "document");
    json_decref(got);
    got = j("[{'op':'add','path':'/b','value':{'y':2}}]");
    assert_json_equal(patch, got, "patch");
    json_decref(got);
    json_decref(doc);
    json_decref(patch);
}

static void test_json_too_many_ops(void **state)
{
    (void)state;
    json_t *doc = j("{'a':1}"), *patch = json_array();
    lo_err_t err = { 0 };
    for (int i = 0; i < 10000; i++)
        json_array_append_new(patch, j("{'op':'test','path':'/a','value':1}"));
    json_t *got = patch_json(doc, patch, &err);
    assert_non_null(got);   /* 10000 is allowed */
    json_decref(got);
    json_array_append_new(patch, j("{'op':'test','path':'/a','value':1}"));
    assert_null(patch_json(doc, patch, &err));
    assert_int_equal(err.code, 413);
    assert_string_equal(err.reason, "RequestEntityTooLarge");
    assert_non_null(strstr(err.message, "maximum operations in a JSON patch is 10000, got 10001"));
    json_decref(doc);
    json_decref(patch);
}

/* Each copy of the document into itself doubles it: stopped at the byte budget. */
static void test_json_copy_bomb(void **state)
{
    (void)state;
    json_t *doc = json_object(), *patch = json_array();
    char big[1025];
    lo_err_t err = { 0 };
    memset(big, 'x', 1024);
    big[1024] = '\0';
    json_object_set_new(doc, "a", json_string(big));
    for (int i = 0; i < 60; i++) {
        char op[96];
        snprintf(op, sizeof op, "{'op':'copy','from':'','path':'/c%d'}", i);
        json_array_append_new(patch, j(op));
    }
    assert_null(patch_json(doc, patch, &err));
    assert_int_equal(err.code, 422);
    assert_non_null(strstr(err.message, "bytes"));
    json_decref(doc);
    json_decref(patch);
}

/* Builds {'v':{'v':...}} nested n deep (n objects). */
static json_t *nested(int n)
{
    json_t *v = json_integer(0);
    for (int i = 0; i < n; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "v", v);
        v = o;
    }
    return v;
}

/* The result must stay within the nesting the codec reads back (64). */
static void test_json_depth_limit(void **state)
{
    (void)state;
    json_t *doc = j("{}"), *patch = json_array(), *op = j("{'op':'add','path':'/a'}");
    lo_err_t err = { 0 };
    json_object_set_new(op, "value", nested(63));   /* 1 + 63 = 64: fits */
    json_array_append_new(patch, op);
    json_t *got = patch_json(doc, patch, &err);
    assert_non_null(got);
    json_decref(got);
    json_object_set_new(op, "value", nested(64));   /* 65: refused */
    assert_null(patch_json(doc, patch, &err));
    assert_int_equal(err.code, 422);
    assert_non_null(strstr(err.message, "deeper than 64"));
    json_decref(patch);

    /* Repeated copies of a deep value one level further down also stop. */
    json_decref(doc);
    doc = json_object();
    json_object_set_new(doc, "v", nested(40));
    patch = j("[{'op':'copy','from':'/v','path':'/v/v/v/v/v/v/v/v/v/v/v/v/v/v/v/v/v/v/v/v/v/v/v/v/v/w'}]");
    assert_null(patch_json(doc, patch, &err));
    assert_int_equal(err.code, 422);
    assert_non_null(strstr(err.message, "deeper than 64"));
    json_decref(patch);
    json_decref(doc);
}

/* Absurd pointers are walked, not recursed: they fail where the document ends. */
static void test_json_hostile_pointers(void **state)
{
    (void)state;
    size_t n = 200000;
    char *path = malloc(2 * n + 1);
    for (size_t i = 0; i < n; i++)
        memcpy(path + 2 * i, "/a", 2);
    path[2 * n] = '\0';
    json_t *doc = j("{'a':{'a':{'a':1}}}"), *patch = json_array(), *op = json_object();
    json_object_set_new(op, "op", json_string("remove"));
    json_object_set_new(op, "path", json_string(path));
    json_array_append_new(patch, op);
    lo_err_t err = { 0 };
    assert_null(patch_json(doc, patch, &err));
    assert_int_equal(err.code, 422);
    assert_true(strlen(err.message) < LO_ERR_MESSAGE_MAX);

    /* "/1~1~1...": one 400 KB token, decoded to "1/1/1..." and not found. */
    for (size_t i = 0; i < n; i++)
        memcpy(path + 2 * i, "~1", 2);
    path[0] = '/';
    json_object_set_new(op, "path", json_string(path));
    assert_null(patch_json(doc, patch, &err));
    assert_int_equal(err.code, 422);
    free(path);
    json_decref(doc);
    json_decref(patch);
}

/* Keys holding NUL bytes are distinct keys, not truncated ones. */
static void test_json_nul_in_key(void **state)
{
    (void)state;
    json_t *doc = j("{'a':1}"), *patch = j("[{'op':'add','path':'/a\\u0000b','value':2}]");
    json_t *got = patch_json(doc, patch, NULL);
    assert_non_null(got);
    assert_int_equal(json_integer_value(json_object_get(got, "a")), 1);
    assert_int_equal(json_integer_value(json_object_getn(got, "a\0b", 3)), 2);
    json_decref(got);
    json_decref(doc);
    json_decref(patch);
}

/* ------------------------------------------------------ merge patch --- */

typedef struct {
    const char *name, *doc, *patch, *want;
} merge_case_t;

static const merge_case_t merge_cases[] = {
    /* RFC 7386 section 3 */
    { "section 3 example",
      "{'title':'Goodbye!','author':{'givenName':'John','familyName':'Doe'},'tags':['example','sample'],"
      "'content':'This will be unchanged'}",
      "{'title':'Hello!','phoneNumber':'+01-123-456-7890','author':{'familyName':null},'tags':['example']}",
      "{'title':'Hello!','author':{'givenName':'John'},'tags':['example'],'content':'This will be unchanged',"
      "'phoneNumber':'+01-123-456-7890'}" },
    /* RFC 7386 appendix A, in order */
    { "A 1", "{'a':'b'}", "{'a':'c'}", "{'a':'c'}" },
    { "A 2", "{'a':'b'}", "{'b':'c'}", "{'a':'b','b':'c'}" },
    { "A 3", "{'a':'b'}", "{'a':null}", "{}" },
    { "A 4", "{'a':'b','b':'c'}", "{'a':null}", "{'b':'c'}" },
    { "A 5", "{'a':['b']}", "{'a':'c'}", "{'a':'c'}" },
    { "A 6", "{'a':'c'}", "{'a':['b']}", "{'a':['b']}" },
    { "A 7", "{'a':{'b':'c'}}", "{'a':{'b':'d','c':null}}", "{'a':{'b':'d'}}" },
    { "A 8", "{'a':[{'b':'c'}]}", "{'a':[1]}", "{'a':[1]}" },
    { "A 9", "['a','b']", "['c','d']", "['c','d']" },
    { "A 10", "{'a':'b'}", "['c']", "['c']" },
    { "A 11", "{'a':'foo'}", "null", "null" },
    { "A 12", "{'a':'foo'}", "'bar'", "'bar'" },
    { "A 13", "{'e':null}", "{'a':1}", "{'e':null,'a':1}" },
    { "A 14", "[1,2]", "{'a':'b','c':null}", "{'a':'b'}" },
    { "A 15", "{}", "{'a':{'bb':{'ccc':null}}}", "{'a':{'bb':{}}}" },
    /* what kubectl apply and edit send */
    { "kubectl apply", "{'metadata':{'name':'gpt','annotations':{'x':'1'}},'spec':{'model':'a','provider':'openai'}}",
      "{'metadata':{'annotations':{'kubectl.kubernetes.io/last-applied-configuration':'{}\\n'}},'spec':{'model':'b'}}",
      "{'metadata':{'name':'gpt','annotations':{'x':'1','kubectl.kubernetes.io/last-applied-configuration':'{}\\n'}},"
      "'spec':{'model':'b','provider':'openai'}}" },
    { "delete a label", "{'metadata':{'labels':{'a':'1','b':'2'}}}", "{'metadata':{'labels':{'a':null}}}",
      "{'metadata':{'labels':{'b':'2'}}}" },
    { "null for a missing key is harmless", "{'a':1}", "{'b':null}", "{'a':1}" },
    { "empty patch is the identity", "{'a':{'b':1}}", "{}", "{'a':{'b':1}}" },
    { "scalar document, object patch", "5", "{'a':1}", "{'a':1}" },
    { "object replaces a scalar member", "{'a':1}", "{'a':{'b':2,'c':null}}", "{'a':{'b':2}}" },
};

static void test_merge(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof merge_cases / sizeof merge_cases[0]; i++) {
        const merge_case_t *c = &merge_cases[i];
        json_t *doc = j(c->doc), *before = json_deep_copy(doc), *patch = j(c->patch), *want = j(c->want);
        json_t *got = patch_merge(doc, patch);
        assert_non_null(got);
        assert_json_equal(got, want, c->name);
        assert_json_equal(doc, before, c->name);
        json_decref(got);
        json_decref(doc);
        json_decref(before);
        json_decref(patch);
        json_decref(want);
    }
}

/* The result owns its values: changing it changes neither input. */
static void test_merge_no_sharing(void **state)
{
    (void)state;
    json_t *doc = j("{'a':{'x':1},'keep':{'k':1}}"), *patch = j("{'a':{'y':2},'n':{'z':3}}");
    json_t *got = patch_merge(doc, patch), *want;
    json_object_set_new(json_object_get(got, "n"), "z", json_integer(9));
    json_object_set_new(json_object_get(got, "keep"), "k", json_integer(9));
    want = j("{'a':{'y':2},'n':{'z':3}}");
    assert_json_equal(patch, want, "patch");
    json_decref(want);
    want = j("{'a':{'x':1},'keep':{'k':1}}");
    assert_json_equal(doc, want, "document");
    json_decref(want);
    json_decref(got);
    json_decref(doc);
    json_decref(patch);
}

/* -------------------------------------------------- strategic check --- */

typedef struct {
    const char *patch;
    const char *directive;  /* NULL: passes */
} strategic_case_t;

static const strategic_case_t strategic_cases[] = {
    { "{'spec':{'model':'b','tools':[{'name':'t','enabled':false}]}}", NULL },
    { "{'metadata':{'labels':{'a':null}}}", NULL },
    { "{'spec':{'instructions':'$patch: costs $5'}}", NULL },          /* values may start with $ */
    { "{'a':['$patch','$retainKeys']}", NULL },                         /* so may list items */
    { "{'a':{'with$dollar':1}}", NULL },
    { "{}", NULL },
    { "null", NULL },
    { "{'$patch':'replace','spec':{}}", "$patch" },
    { "{'spec':{'$patch':'delete'}}", "$patch" },
    { "{'spec':{'tools':[{'name':'t','$patch':'delete'}]}}", "$patch" },
    { "{'spec':{'$retainKeys':['model'],'model':'a'}}", "$retainKeys" },
    { "{'spec':{'$setElementOrder/tools':[{'name':'a'}],'tools':[]}}", "$setElementOrder/tools" },
    { "{'spec':{'$deleteFromPrimitiveList/fallbacks':['x']}}", "$deleteFromPrimitiveList/fallbacks" },
    { "{'a':[[{'b':{'$anythingElse':1}}]]}", "$anythingElse" },
    { "{'$':1}", "$" },
};

static void test_strategic(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof strategic_cases / sizeof strategic_cases[0]; i++) {
        const strategic_case_t *c = &strategic_cases[i];
        json_t *patch = j(c->patch);
        lo_err_t err = { 0 };
        int rc = patch_check_strategic(patch, &err);
        if (!c->directive) {
            if (rc != 0)
                fail_msg("%s: refused: %s", c->patch, err.message);
        } else {
            char quoted[128];
            snprintf(quoted, sizeof quoted, "\"%s\"", c->directive);
            if (rc == 0)
                fail_msg("%s: accepted, want %s refused", c->patch, c->directive);
            assert_int_equal(err.code, 400);
            assert_string_equal(err.reason, "BadRequest");
            if (!strstr(err.message, quoted))
                fail_msg("%s: message \"%s\" does not name %s", c->patch, err.message, quoted);
        }
        json_decref(patch);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_ok),
        cmocka_unit_test(test_json_errors),
        cmocka_unit_test(test_json_error_wording),
        cmocka_unit_test(test_json_no_sharing),
        cmocka_unit_test(test_json_too_many_ops),
        cmocka_unit_test(test_json_copy_bomb),
        cmocka_unit_test(test_json_depth_limit),
        cmocka_unit_test(test_json_hostile_pointers),
        cmocka_unit_test(test_json_nul_in_key),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_merge_no_sharing),
        cmocka_unit_test(test_strategic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
