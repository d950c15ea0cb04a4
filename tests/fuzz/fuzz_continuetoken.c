/*
 * fuzz_continuetoken.c - the continue tokens of paginated lists
 * (core/continuetoken.c): a client may send anything back.
 *
 * Input: a token (up to a NUL byte), then optionally a namespace and a
 * name (NUL-separated) and 8 bytes of resourceVersion.
 * Checked besides crashes: a refusal is a well-formed 400; a token that
 * decodes encodes back to one that decodes to the same key; a token the
 * server makes for a stored key (a valid namespace and name, rv > 0)
 * decodes to that key.
 */
#include "fuzz.h"
#include "langop/core/continuetoken.h"
#include "langop/core/selector.h"

static void check_roundtrip(int64_t rv, const char *ns, const char *name)
{
    char *token = continue_token_encode(rv, ns, name);
    int64_t rv2 = 0;
    char *ns2 = NULL, *name2 = NULL;
    lo_err_t err = {0};
    int rc = continue_token_decode(token, &rv2, &ns2, &name2, &err);
    FUZZ_CHECK(rc == 0, "a token the server made does not decode: %s (%s)", token, err.message);
    FUZZ_CHECK(rv2 == rv && strcmp(ns2, ns) == 0 && strcmp(name2, name) == 0,
               "token %s gave %lld %s/%s, made from %lld %s/%s", token, (long long)rv2, ns2, name2, (long long)rv, ns,
               name);
    free(ns2);
    free(name2);
    free(token);
    lo_err_clear(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_part_t parts[4];
    size_t n = fuzz_split(data, size, parts, 4);
    char *token = fuzz_string(parts[0]);
    int64_t rv = 0;
    char *ns = NULL, *name = NULL;
    lo_err_t err = {0};
    if (continue_token_decode(token, &rv, &ns, &name, &err) == 0) {
        FUZZ_CHECK(rv > 0 && ns != NULL && name != NULL && name[0] != '\0' && strchr(name, '/') == NULL,
                   "decoded an unusable key from %s", token);
        if (text_utf8_valid(ns, strlen(ns)) && text_utf8_valid(name, strlen(name)))
            check_roundtrip(rv, ns, name);
        free(ns);
        free(name);
    } else {
        fuzz_check_err(&err, "continue_token_decode");
    }
    lo_err_clear(&err);
    free(token);

    if (n == 4 && parts[3].n >= 8) {
        char *ns_in = fuzz_string(parts[1]), *name_in = fuzz_string(parts[2]);
        int64_t rv_in;
        memcpy(&rv_in, parts[3].p, sizeof(rv_in));
        if (rv_in > 0 && (ns_in[0] == '\0' || label_subdomain_problem(ns_in) == NULL) &&
            label_subdomain_problem(name_in) == NULL)
            check_roundtrip(rv_in, ns_in, name_in);
        free(ns_in);
        free(name_in);
    }
    return 0;
}
