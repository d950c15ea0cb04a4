/*
 * fuzz_yaml.c - the YAML decoder (core/codec.c: server-side apply bodies,
 * YAML writes, kubeconfigs), then the decoded object through validation as
 * each kind.
 *
 * Checked besides crashes: a refusal is a 400 that can be sent back; the
 * first document of a stream is what codec_decode_yaml gives; what decodes
 * encodes back (JSON and YAML) to an equal tree.
 */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    lo_err_t err = {0};
    json_t *v = codec_decode_yaml(buf, size, &err);
    if (v == NULL)
        fuzz_check_err(&err, "codec_decode_yaml");
    lo_err_clear(&err);

    json_t *docs = codec_decode_yaml_stream(buf, size, &err);
    if (docs == NULL) {
        fuzz_check_err(&err, "codec_decode_yaml_stream");
    } else if (v != NULL && json_array_size(docs) > 0) {
        FUZZ_CHECK(json_equal(json_array_get(docs, 0), v), "the stream's first document differs");
    }
    lo_err_clear(&err);

    json_t *any = codec_decode_auto(buf, size, &err);
    if (any == NULL)
        fuzz_check_err(&err, "codec_decode_auto");
    lo_err_clear(&err);
    json_decref(any);

    if (v != NULL) {
        fuzz_check_roundtrip(v);
        fuzz_admit_as_each_kind(v);
    }
    for (size_t i = 1; i < json_array_size(docs); i++)
        fuzz_check_roundtrip(json_array_get(docs, i));
    json_decref(docs);
    json_decref(v);
    return 0;
}
