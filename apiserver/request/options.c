/*
 * options.c - the query options of a resource request, decoded once (see
 * langop/request/options.h).
 */
#include "langop/request/options.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "langop/core/continuetoken.h"
#include "langop/core/status.h"
#include "langop/core/text.h"
#include "langop/schema/objmeta.h"

#define FIELD_MANAGER_MAX 128

/*
 * An Options object that decoded but does not validate: 422 Invalid of
 * kind <options_kind>.meta.k8s.io with one cause, as kube's handlers answer
 * what apimachinery's Validate*Options finds (a value that does not
 * convert at all stays 400 BadRequest).
 */
static void invalid_option(lo_err_t *err, const char *options_kind, const char *reason, const char *field,
                           const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void invalid_option(lo_err_t *err, const char *options_kind, const char *reason, const char *field,
                           const char *fmt, ...)
{
    char msg[LO_ERR_MESSAGE_MAX / 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    lo_err_add_cause(err, reason, msg, field);
    status_invalid(err, options_kind, "meta.k8s.io", "");
}

/* A forbidden combination of list options (field.Forbidden of ValidateListOptions). */
static void list_forbidden(lo_err_t *err, const char *field, const char *why)
{
    invalid_option(err, "ListOptions", "FieldValueForbidden", field, "Forbidden: %s", why);
}

/* ---- the value parsers ---- */

int options_parse_bool(const char *value, int *out)
{
    static const char *const truths[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *const lies[] = {"0", "f", "F", "FALSE", "false", "False"};
    for (size_t i = 0; i < sizeof(truths) / sizeof(truths[0]); i++) {
        if (strcmp(value, truths[i]) == 0 || strcmp(value, lies[i]) == 0) {
            *out = strcmp(value, truths[i]) == 0;
            return 0;
        }
    }
    return -1;
}

int options_parse_int64(const char *value, int64_t *out)
{
    const char *p = value[0] == '+' || value[0] == '-' ? value + 1 : value;
    if (*p == '\0')
        return -1;
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9')
            return -1; /* strtoll would take spaces, hex prefixes of base 0, ... */
    errno = 0;
    long long n = strtoll(value, NULL, 10);
    if (errno != 0)
        return -1;
    *out = n;
    return 0;
}

int options_parse_dry_run(const char *value, const char *options_kind, lo_err_t *err)
{
    if (strcmp(value, "All") == 0)
        return 1;
    invalid_option(err, options_kind, "FieldValueNotSupported", "dryRun",
                   "Unsupported value: [\"%.100s\"]: supported values: \"All\"", value);
    return -1;
}

int options_parse_propagation(const char *value, propagation_t *out, lo_err_t *err)
{
    static const struct {
        const char *name;
        propagation_t value;
    } policies[] = {
        {"Orphan", PROPAGATION_ORPHAN}, {"Background", PROPAGATION_BACKGROUND}, {"Foreground", PROPAGATION_FOREGROUND}};
    for (size_t i = 0; i < sizeof(policies) / sizeof(policies[0]); i++) {
        if (strcmp(value, policies[i].name) == 0) {
            *out = policies[i].value;
            return 0;
        }
    }
    char msg[256];
    snprintf(msg, sizeof(msg), "Unsupported value: \"%.100s\": supported values: \"Foreground\", \"Background\", "
             "\"Orphan\"", value);
    lo_err_add_cause(err, "FieldValueNotSupported", msg, "propagationPolicy");
    status_invalid(err, "DeleteOptions", "meta.k8s.io", "");
    return -1;
}

/* ---- one query parameter ---- */

/* The first value of key, or NULL when absent or empty (kube reads "" as unset). */
static const char *first(const reqinfo_t *info, const char *key)
{
    const char *v = reqinfo_query_get(info, key);
    return v && v[0] ? v : NULL;
}

static int query_bool(const reqinfo_t *info, const char *key, int *present, int *out, lo_err_t *err)
{
    const char *v = first(info, key);
    if (present)
        *present = v != NULL;
    if (v == NULL)
        return 0;
    if (options_parse_bool(v, out) == 0)
        return 0;
    status_bad_request(err, "%s: Invalid value: \"%.100s\": must be a boolean (strconv.ParseBool)", key, v);
    return -1;
}

/* An int64; nonneg: negative values are refused too. */
static int query_int(const reqinfo_t *info, const char *key, int nonneg, int *present, int64_t *out, lo_err_t *err)
{
    const char *v = first(info, key);
    if (present)
        *present = v != NULL;
    if (v == NULL)
        return 0;
    if (options_parse_int64(v, out) == 0 && (!nonneg || *out >= 0))
        return 0;
    status_bad_request(err, "%s: Invalid value: \"%.100s\": must be a%s integer", key, v,
                       nonneg ? " non-negative" : " 64-bit");
    return -1;
}

/* dryRun: every value must be All. */
static int query_dry_run(const reqinfo_t *info, const char *options_kind, int *out, lo_err_t *err)
{
    *out = 0;
    for (size_t i = 0; i < info->query.count; i++) {
        if (strcmp(info->query.keys[i], "dryRun") != 0 || info->query.values[i][0] == '\0')
            continue;
        if (options_parse_dry_run(info->query.values[i], options_kind, err) < 0)
            return -1;
        *out = 1;
    }
    return 0;
}

/* ---- per Options type ---- */

/* resourceVersion and resourceVersionMatch of a list, and continue with them. */
static int list_versions(const reqinfo_t *info, int watch, options_list_t *l, lo_err_t *err)
{
    if (query_int(info, "resourceVersion", 1, &l->has_rv, &l->rv, err) != 0)
        return -1;
    const char *match = first(info, "resourceVersionMatch");
    if (match && watch) { /* sendInitialEvents, which alone allows it, was refused before */
        list_forbidden(err, "resourceVersionMatch",
                       "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided");
        return -1;
    }
    if (match) {
        if (strcmp(match, "Exact") == 0) {
            l->match = RV_MATCH_EXACT;
        } else if (strcmp(match, "NotOlderThan") == 0) {
            l->match = RV_MATCH_NOT_OLDER_THAN;
        } else {
            invalid_option(err, "ListOptions", "FieldValueNotSupported", "resourceVersionMatch",
                           "Unsupported value: \"%.100s\": supported values: \"Exact\", \"NotOlderThan\", \"\"",
                           match);
            return -1;
        }
        if (!l->has_rv) {
            list_forbidden(err, "resourceVersionMatch",
                           "resourceVersionMatch is forbidden unless resourceVersion is provided");
            return -1;
        }
        if (l->match == RV_MATCH_EXACT && l->rv == 0) {
            list_forbidden(err, "resourceVersionMatch",
                           "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"");
            return -1;
        }
    }
    const char *cont = first(info, "continue");
    if (cont == NULL || watch)
        return 0;
    if (l->has_rv && l->rv != 0) {
        status_bad_request(err, "specifying resource version is not allowed when using continue");
        return -1;
    }
    if (l->match != RV_MATCH_UNSET) {
        list_forbidden(err, "resourceVersionMatch", "resourceVersionMatch is forbidden when continue is provided");
        return -1;
    }
    l->has_continue = 1;
    return continue_token_decode(cont, &l->continue_rv, &l->continue_ns, &l->continue_name, err);
}

static int decode_list(const reqinfo_t *info, int watch, options_list_t *l, lo_err_t *err)
{
    int unused, initial_events;
    const char *initial = first(info, "sendInitialEvents");
    if (initial && options_parse_bool(initial, &initial_events) != 0) {
        status_bad_request(err, "sendInitialEvents: Invalid value: \"%.100s\": must be a boolean (strconv.ParseBool)",
                           initial);
        return -1;
    }
    if (initial) { /* this server serves no WatchList: the answer of a kube-apiserver without that gate */
        list_forbidden(err, "sendInitialEvents",
                       watch ? "sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled"
                             : "sendInitialEvents is forbidden for list");
        return -1;
    }
    l->label_text = first(info, "labelSelector") ? first(info, "labelSelector") : "";
    l->field_text = first(info, "fieldSelector") ? first(info, "fieldSelector") : "";
    if ((l->labels = label_selector_parse(l->label_text, err)) == NULL ||
        (l->fields = field_selector_parse(l->field_text, objmeta_field_labels, err)) == NULL)
        return -1;
    int64_t timeout = 0;
    if (query_int(info, "limit", 1, NULL, &l->limit, err) != 0 ||
        query_int(info, "timeoutSeconds", 1, NULL, &timeout, err) != 0 ||
        query_bool(info, "allowWatchBookmarks", NULL, &l->allow_watch_bookmarks, err) != 0 ||
        query_bool(info, "watch", NULL, &unused, err) != 0)
        return -1;
    l->timeout_seconds = timeout;
    return list_versions(info, watch, l, err);
}

/* fieldManager: at most 128 bytes, printable (no control characters, valid UTF-8), as kube validates it. */
static int check_field_manager(const char *m, const char *options_kind, lo_err_t *err)
{
    if (strlen(m) > FIELD_MANAGER_MAX) {
        lo_err_add_cause(err, "FieldValueTooLong", "Too long: must have at most 128 bytes", "fieldManager");
        status_invalid(err, options_kind, "meta.k8s.io", "");
        return -1;
    }
    int printable = text_utf8_valid(m, strlen(m));
    for (const unsigned char *p = (const unsigned char *)m; *p && printable; p++)
        printable = *p >= 0x20 && *p != 0x7F && !(p[0] == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F); /* C0, DEL, C1 */
    if (printable)
        return 0;
    char msg[LO_ERR_MESSAGE_MAX / 2];
    snprintf(msg, sizeof(msg), "Invalid value: \"%.128s\": fieldManager must only contain printable characters", m);
    lo_err_add_cause(err, "FieldValueInvalid", msg, "fieldManager");
    status_invalid(err, options_kind, "meta.k8s.io", "");
    return -1;
}

static int decode_write(const reqinfo_t *info, options_write_t *w, lo_err_t *err)
{
    const char *kind = strcmp(info->verb, "create") == 0   ? "CreateOptions"
                       : strcmp(info->verb, "update") == 0 ? "UpdateOptions"
                                                           : "PatchOptions";
    if (query_dry_run(info, kind, &w->dry_run, err) != 0 ||
        decode_field_validation(first(info, "fieldValidation"), kind, &w->field_validation, err) != 0)
        return -1;
    w->field_manager = first(info, "fieldManager");
    if (w->field_manager && check_field_manager(w->field_manager, kind, err) != 0)
        return -1;
    if (strcmp(info->verb, "patch") == 0 && query_bool(info, "force", &w->has_force, &w->force, err) != 0)
        return -1;
    return 0;
}

static int decode_delete(const reqinfo_t *info, options_delete_t *d, lo_err_t *err)
{
    if (query_dry_run(info, "DeleteOptions", &d->dry_run, err) != 0 ||
        query_int(info, "gracePeriodSeconds", 0, &d->has_grace, &d->grace_seconds, err) != 0 ||
        query_bool(info, "orphanDependents", &d->has_orphan, &d->orphan, err) != 0)
        return -1;
    const char *policy = first(info, "propagationPolicy");
    if (policy && options_parse_propagation(policy, &d->propagation, err) != 0)
        return -1;
    if (policy && d->has_orphan) {
        lo_err_add_cause(err, "FieldValueInvalid",
                         "Invalid value: \"null\": orphanDependents and deletionPropagation cannot be both set",
                         "propagationPolicy");
        status_invalid(err, "DeleteOptions", "meta.k8s.io", "");
        return -1;
    }
    return 0;
}

/* The answer's format, and includeObject when it is a Table. */
static int decode_format(const reqinfo_t *info, const char *accept, options_t *o, lo_err_t *err)
{
    if (encode_choose(accept, 1, &o->format, err) != 0)
        return -1;
    return o->format == ENCODE_TABLE ? table_parse_include(first(info, "includeObject"), &o->include, err) : 0;
}

static int verb_is(const reqinfo_t *info, const char *verb)
{
    return strcmp(info->verb, verb) == 0;
}

int options_decode(const reqinfo_t *info, const char *accept, options_t *out, lo_err_t *err)
{
    memset(out, 0, sizeof(*out));
    if (decode_format(info, accept, out, err) != 0)
        return -1;
    if (verb_is(info, "get"))
        return query_int(info, "resourceVersion", 1, &out->has_get_rv, &out->get_rv, err);
    if (verb_is(info, "list") || verb_is(info, "watch"))
        return decode_list(info, verb_is(info, "watch"), &out->list, err);
    if (verb_is(info, "create") || verb_is(info, "update") || verb_is(info, "patch"))
        return decode_write(info, &out->write, err);
    if (verb_is(info, "delete"))
        return decode_delete(info, &out->del, err);
    if (verb_is(info, "deletecollection"))
        return decode_list(info, 0, &out->list, err) != 0 ? -1 : decode_delete(info, &out->del, err);
    return 0;
}

void options_free(options_t *o)
{
    label_selector_free(o->list.labels);
    field_selector_free(o->list.fields);
    free(o->list.continue_ns);
    free(o->list.continue_name);
    memset(o, 0, sizeof(*o));
}
