/*
 * fuzz_selector.c - label and field selectors (core/selector.c), parsed
 * from a query value and matched against objects.
 *
 * Input: the label selector, a NUL byte, the field selector, a NUL byte,
 * an object (JSON) to match; its labels keep only string values, as stored
 * labels are (validation sees to it).
 * Checked besides crashes: a refusal is a well-formed 400; a selector
 * without requirements matches everything; a field selector's exact value
 * for metadata.name is what an object must carry to match it.
 */
#include "fuzz.h"
#include "langop/core/selector.h"

/* The labels an object stored by the server could have: the string values of obj's metadata.labels. */
static json_t *stored_labels(const json_t *obj)
{
    json_t *labels = json_object_get(json_object_get(obj, "metadata"), "labels");
    if (!json_is_object(labels))
        return NULL;
    json_t *out = json_object();
    const char *key;
    json_t *v;
    json_object_foreach(labels, key, v) if (json_is_string(v)) json_object_set(out, key, v);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_part_t parts[3];
    size_t n = fuzz_split(data, size, parts, 3);
    char *label_text = fuzz_string(parts[0]);
    char *field_text = n > 1 ? fuzz_string(parts[1]) : lo_strdup("");
    lo_err_t err = {0};
    json_t *obj = n > 2 ? codec_decode_json(parts[2].p, parts[2].n, &err) : NULL;
    lo_err_clear(&err);
    if (!json_is_object(obj)) {
        json_decref(obj);
        obj = json_pack("{s:{s:s, s:s, s:{s:s}}}", "metadata", "name", "m", "namespace", "default", "labels", "app",
                        "web");
    }
    json_t *labels = stored_labels(obj);

    label_selector_t *ls = label_selector_parse(label_text, &err);
    if (ls == NULL) {
        fuzz_check_err(&err, "label_selector_parse");
    } else {
        int m = label_selector_matches(ls, labels);
        FUZZ_CHECK(m == 0 || m == 1, "label_selector_matches gave %d", m);
        if (label_selector_empty(ls))
            FUZZ_CHECK(m == 1 && label_selector_matches(ls, NULL), "an empty selector did not match");
        label_selector_free(ls);
    }
    lo_err_clear(&err);

    field_selector_t *fs = field_selector_parse(field_text, objmeta_field_labels, &err);
    if (fs == NULL) {
        fuzz_check_err(&err, "field_selector_parse");
    } else {
        int m = field_selector_matches(fs, obj);
        FUZZ_CHECK(m == 0 || m == 1, "field_selector_matches gave %d", m);
        const char *exact = field_selector_exact(fs, "metadata.name");
        const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
        if (m && exact)
            FUZZ_CHECK(name ? strcmp(name, exact) == 0 : exact[0] == '\0', "matched metadata.name=%s with name %s",
                       exact, name ? name : "(none)");
        field_selector_free(fs);
    }
    lo_err_clear(&err);

    json_decref(labels);
    json_decref(obj);
    free(label_text);
    free(field_text);
    return 0;
}
