/*
 * fuzz_patch.c - the PATCH formats (registry/patch.c): a JSON patch, a
 * merge patch and the strategic-merge-patch check, applied to a document.
 *
 * Input: the document's JSON, a NUL byte, the patch's JSON.
 * Checked besides crashes: the inputs are left untouched (the store hands
 * out shared trees); a refusal is a well-formed 4xx (422 or 400, as kube);
 * a merge patch applied twice gives what it gave once (RFC 7386 is
 * idempotent); a JSON patch's result encodes to JSON that reads back.
 */
#include "fuzz.h"
#include "langop/registry/patch.h"

static json_t *decode(fuzz_part_t part)
{
    lo_err_t err = {0};
    json_t *v = codec_decode_json(part.p, part.n, &err);
    lo_err_clear(&err);
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_part_t parts[2];
    if (fuzz_split(data, size, parts, 2) < 2)
        return 0;
    json_t *doc = decode(parts[0]), *patch = decode(parts[1]);
    if (doc == NULL || patch == NULL) {
        json_decref(doc);
        json_decref(patch);
        return 0;
    }
    char *doc_before = codec_encode_json(doc), *patch_before = codec_encode_json(patch);
    lo_err_t err = {0};

    json_t *out = patch_json(doc, patch, &err);
    if (out == NULL) {
        fuzz_check_err(&err, "patch_json");
    } else {
        fuzz_check_roundtrip(out);
        json_decref(out);
    }
    lo_err_clear(&err);

    json_t *once = patch_merge(doc, patch);
    FUZZ_CHECK(once != NULL, "patch_merge gave NULL");
    json_t *twice = patch_merge(once, patch);
    char *a = codec_encode_json(once), *b = codec_encode_json(twice);
    FUZZ_CHECK(json_equal(once, twice), "a merge patch applied twice differs:\n once  %s\n twice %s", a, b);
    free(a);
    free(b);
    json_decref(twice);
    json_decref(once);

    if (patch_check_strategic(patch, &err) != 0)
        fuzz_check_err(&err, "patch_check_strategic");
    lo_err_clear(&err);

    char *doc_after = codec_encode_json(doc), *patch_after = codec_encode_json(patch);
    FUZZ_CHECK(strcmp(doc_before, doc_after) == 0, "the document was changed:\n%s\n%s", doc_before, doc_after);
    FUZZ_CHECK(strcmp(patch_before, patch_after) == 0, "the patch was changed");
    free(doc_before);
    free(doc_after);
    free(patch_before);
    free(patch_after);
    json_decref(doc);
    json_decref(patch);
    return 0;
}
