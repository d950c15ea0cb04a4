/*
 * options.h - the query options of a resource request, decoded once into
 * typed structs, right after request info and before any handler; handlers
 * read only these.
 *
 * Each verb decodes what kube-apiserver's Options type for it carries:
 *   get                   GetOptions (resourceVersion)
 *   list, watch           ListOptions (labelSelector, fieldSelector, limit,
 *                         continue, resourceVersion, resourceVersionMatch,
 *                         timeoutSeconds, allowWatchBookmarks,
 *                         sendInitialEvents, watch)
 *   create, update, patch CreateOptions/UpdateOptions/PatchOptions (dryRun,
 *                         fieldManager, fieldValidation; force for patch)
 *   delete                DeleteOptions from the query (dryRun,
 *                         gracePeriodSeconds, propagationPolicy,
 *                         orphanDependents; the body's are merged by the verb)
 *   deletecollection      both ListOptions and DeleteOptions
 * and every verb its answer's format (Accept, includeObject for a Table).
 *
 * Values are checked as kube checks them: integers as int64 (strconv's
 * ParseInt: digits with an optional sign, range-checked), booleans as Go's
 * strconv.ParseBool, each dryRun value must be "All", enumerations exact
 * and case-sensitive, fieldManager printable and at most 128 bytes,
 * resourceVersion and resourceVersionMatch in their allowed combinations,
 * selectors by their full grammar. A value that does not convert is 400
 * BadRequest; one that converts but that kube's Validate*Options refuses
 * is 422 Invalid of that Options kind (dryRun, fieldValidation,
 * fieldManager, force, propagationPolicy, resourceVersionMatch and
 * sendInitialEvents, in their combinations); nothing is changed by a
 * request with either.
 * A parameter given twice counts by its first value, as kube's conversion
 * of a query (url.Values) does, except dryRun, whose every value counts.
 * Parameters a verb does not take are ignored, as in kube.
 */
#ifndef LANGOP_OPTIONS_H
#define LANGOP_OPTIONS_H

#include <stdint.h>
#include "langop/core/common.h"
#include "langop/core/selector.h"
#include "langop/request/decode.h"
#include "langop/request/encode.h"
#include "langop/request/reqinfo.h"
#include "langop/schema/table.h"

typedef enum rv_match {
    RV_MATCH_UNSET = 0,
    RV_MATCH_EXACT,
    RV_MATCH_NOT_OLDER_THAN,
} rv_match_t;

/* ListOptions: list, watch, deletecollection. */
typedef struct options_list {
    const char *label_text;          /* as sent ("" when absent); borrowed from reqinfo */
    const char *field_text;
    label_selector_t *labels;        /* owned: parsed label_text (matches all when empty) */
    field_selector_t *fields;        /* owned */
    int has_rv;                      /* resourceVersion given (non-empty) */
    int64_t rv;                      /* its value when has_rv */
    rv_match_t match;
    int64_t limit;                   /* 0: no limit */
    int has_continue;
    int64_t continue_rv;             /* the decoded continue token */
    char *continue_ns, *continue_name;  /* owned */
    int64_t timeout_seconds;         /* 0: unset */
    int allow_watch_bookmarks;
} options_list_t;

/* CreateOptions, UpdateOptions, PatchOptions. */
typedef struct options_write {
    int dry_run;
    field_validation_t field_validation;
    const char *field_manager;       /* borrowed; NULL when absent (the verb defaults it from User-Agent) */
    int has_force, force;
} options_write_t;

/* DeleteOptions, from the query. */
typedef enum propagation {
    PROPAGATION_UNSET = 0,
    PROPAGATION_ORPHAN,
    PROPAGATION_BACKGROUND,
    PROPAGATION_FOREGROUND,
} propagation_t;

typedef struct options_delete {
    int dry_run;
    int has_grace;
    int64_t grace_seconds;
    propagation_t propagation;
    int has_orphan, orphan;
} options_delete_t;

typedef struct options {
    encode_format_t format;          /* of the answer, from Accept */
    table_include_t include;         /* includeObject, for a Table */
    int has_get_rv;                  /* GetOptions.resourceVersion */
    int64_t get_rv;
    options_list_t list;
    options_write_t write;
    options_delete_t del;
} options_t;

/**
 * Decodes the options of info's verb (and the answer's format from
 * accept, which may be NULL) into out, zeroed first. Returns 0, or -1 with
 * err (400, 406 or 422); call options_free() after either.
 */
int options_decode(const reqinfo_t *info, const char *accept, options_t *out, lo_err_t *err);
void options_free(options_t *o);

/* The value parsers, as kube's conversions parse a query value (shared with the body of a delete). */

/** Go's strconv.ParseBool: 1 t T TRUE true True / 0 f F FALSE false False. Returns 0 or -1. */
int options_parse_bool(const char *value, int *out);
/** strconv.ParseInt(value, 10, 64): an optional sign and digits, in range. Returns 0 or -1. */
int options_parse_int64(const char *value, int64_t *out);
/** One dryRun value: 1 for "All", -1 with err 422 Invalid of options_kind for anything else. */
int options_parse_dry_run(const char *value, const char *options_kind, lo_err_t *err);
/** A propagationPolicy: 0 with *out, or -1 with err 422 naming the field. */
int options_parse_propagation(const char *value, propagation_t *out, lo_err_t *err);

#endif
