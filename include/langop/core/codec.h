/*
 * codec.h - bytes <-> jansson trees: JSON and YAML request bodies, YAML
 * documents (the embedded schema files), YAML output.
 *
 * Decoding never crashes on hostile input: malformed text gives NULL and an
 * err with code 400, reason "BadRequest" and a message that says where it
 * broke (line and column, or byte offset). Nesting deeper than
 * CODEC_MAX_DEPTH is refused the same way.
 *
 * YAML scalars resolve like Kubernetes' sigs.k8s.io/yaml (YAML 1.1 core as
 * seen through JSON): plain `true/false/yes/no/on/off` -> boolean, `null`,
 * `~` or empty -> null, integers and floats -> numbers, anything quoted ->
 * string. Anchors, aliases and tags other than the standard ones are refused,
 * and so is a NUL character in a string, as JSON decoding refuses \u0000.
 * Only the first document of a stream is decoded by codec_decode_yaml.
 */
#ifndef LANGOP_CODEC_H
#define LANGOP_CODEC_H

#include <stddef.h>
#include <jansson.h>
#include "langop/core/common.h"

#define CODEC_MAX_DEPTH 64

typedef enum codec_format {
    CODEC_JSON = 1,
    CODEC_YAML = 2,
} codec_format_t;

/** JSON text -> new tree (any JSON value at the top). Duplicate keys: the last wins. */
json_t *codec_decode_json(const char *buf, size_t len, lo_err_t *err);

/**
 * JSON text -> new tree, also reporting duplicate object keys (for
 * fieldValidation=Strict): *duplicates (may be NULL) receives a new array
 * of dotted paths ("spec.provider") of keys that appeared twice.
 */
json_t *codec_decode_json_checked(const char *buf, size_t len, json_t **duplicates, lo_err_t *err);

/**
 * The fast path of codec_decode_json: a new tree, the same jansson would
 * build, for the text it is sure of (see codec.c), or NULL (err untouched)
 * when it leaves the text to jansson. dups (may be NULL) receives the
 * duplicate keys' paths as codec_decode_json_checked reports them; it is
 * left empty when the answer is NULL.
 */
json_t *codec_decode_json_fast(const char *buf, size_t len, json_t *dups);

/** YAML text (first document) -> new tree. */
json_t *codec_decode_yaml(const char *buf, size_t len, lo_err_t *err);

/**
 * codec_decode_yaml, and in *duplicates (a new array, set when the answer
 * is not NULL) the paths of the keys a mapping has more than once, as
 * codec_decode_json_checked reports them; the last one's value is kept.
 */
json_t *codec_decode_yaml_checked(const char *buf, size_t len, json_t **duplicates, lo_err_t *err);

/** Every document of a YAML stream -> new array of trees. */
json_t *codec_decode_yaml_stream(const char *buf, size_t len, lo_err_t *err);

/** Picks JSON when the text starts (after white space) with '{' or '[', YAML otherwise. */
json_t *codec_decode_auto(const char *buf, size_t len, lo_err_t *err);

/**
 * Tree -> compact JSON text (keys in the tree's order, reals as the shortest
 * text that reads back the same); caller frees. Never NULL (dies on OOM).
 */
char *codec_encode_json(const json_t *value);
/** codec_encode_json() that also gives the length (len may be NULL). */
char *codec_encode_json_len(const json_t *value, size_t *len);

/** Appends the compact JSON of value to b (as codec_encode_json writes it). */
void codec_encode_json_to(lo_buf_t *b, const json_t *value);

/**
 * Tree -> block-style YAML text, keys in the tree's order, strings quoted
 * whenever a plain scalar would read back as another type. Caller frees.
 * codec_decode_yaml(codec_encode_yaml(v)) is equal to v (for strings
 * without NUL, which no decoder gives).
 */
char *codec_encode_yaml(const json_t *value);

/*
 * A YAML document written in pieces, for an answer too big to hold whole:
 * a mapping with the members of head, then the key seq_key holding a
 * sequence whose items are added one by one. The bytes taken, one piece
 * after another, are those codec_encode_yaml gives for the whole mapping.
 * One thread at a time.
 */
typedef struct codec_yaml_seq codec_yaml_seq_t;

/** Starts the document (head borrowed; its members are written now). */
codec_yaml_seq_t *codec_yaml_seq_open(const json_t *head, const char *seq_key);
/** Writes one item of the sequence (borrowed). */
void codec_yaml_seq_add(codec_yaml_seq_t *w, const json_t *item);
/** Ends the sequence, the mapping and the document. */
void codec_yaml_seq_close(codec_yaml_seq_t *w);
/** The bytes written since the last take (malloc'd, *len set), or NULL if the emitter failed. */
char *codec_yaml_seq_take(codec_yaml_seq_t *w, size_t *len);
void codec_yaml_seq_free(codec_yaml_seq_t *w);

#endif
