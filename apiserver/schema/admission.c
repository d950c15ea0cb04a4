/*
 * admission.c - the rules a structural schema cannot say (see
 * langop/admission.h), kept as one table of {kind, sort, rule} entries:
 * adding a rule is one function and one row.
 *
 * Two sorts of rule:
 *  - field rules look at the object alone and add one 422 cause per broken
 *    field; admission_check gathers the causes of every field rule of the
 *    kind into one Invalid error, as kube-apiserver's validation does;
 *  - policy rules may read other objects through the write transaction and
 *    answer 403 Forbidden at once.
 * Rules run in table order, which follows kube-apiserver's: the namespace
 * lifecycle check (membership) before validation, the quota check
 * (capacity) after it. Once a field rule has failed, policy rules are
 * skipped, so an invalid object is answered 422 rather than 403 for a full
 * cluster (kube validates before ResourceQuota admission runs).
 *
 * Wording, chosen to read like kube and written here because clients see it:
 *  - provider choice: field "spec", reason FieldValueInvalid, message
 *    `Invalid value: "object": set exactly one of provider or litellmProvider`
 *    for both "neither" and "both": what a CRD carrying the schema's CEL
 *    rule (openapi/languagemodels.yaml) prints.
 *  - credentials in params: field `spec.params.<key>` (dotted, as a CRD's
 *    schema validator names the keys of a map; nested keys extend the path,
 *    list items take [i]), reason FieldValueForbidden.
 *  - schedule: field spec.execution.schedule; FieldValueForbidden when the
 *    mode is not task (absent mode means service), else FieldValueInvalid
 *    with the cron parser's reason.
 *  - policy: `<plural>.langop.io "<name>" is forbidden: <why>`, details
 *    {name, group, kind: plural}, as apimachinery's NewForbidden.
 *
 * No global mutable state: the tables are const, so the checks may run on
 * any thread: on a request's worker (see admission.h for which), and
 * admission_check_writer in the store's writer, atomically.
 */
#include "langop/schema/admission.h"
#include "langop/schema/admission_rule.h"

#include <assert.h>
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "langop/core/status.h"
#include "langop/schema/keyrules.h"
#include "langop/schema/modelrules.h"
#include "langop/schema/objmeta.h"

#define CLUSTER_RESOURCE "languageclusters"

/* The owning LanguageCluster, read once for all the rules of a check. */
typedef struct cluster_read {
    int done;
    int rc;              /* STORE_OK, STORE_NOT_FOUND or < 0 */
    json_t *cluster;     /* new ref (shared with the store: read-only), or NULL */
    lo_err_t err;        /* when rc is an error */
} cluster_read_t;

void rule_invalid(lo_err_t *err, const char *field, const char *value, const char *why)
{
    char msg[LO_ERR_MESSAGE_MAX];
    snprintf(msg, sizeof(msg), "Invalid value: \"%.200s\": %s", value, why);
    lo_err_add_cause(err, "FieldValueInvalid", msg, field);
}

void rule_required(lo_err_t *err, const char *field, const char *why)
{
    char msg[LO_ERR_MESSAGE_MAX];
    snprintf(msg, sizeof(msg), "Required value: %s", why);
    lo_err_add_cause(err, "FieldValueRequired", msg, field);
}

void rule_forbidden(lo_err_t *err, const char *field, const char *why)
{
    char msg[LO_ERR_MESSAGE_MAX];
    snprintf(msg, sizeof(msg), "Forbidden: %s", why);
    lo_err_add_cause(err, "FieldValueForbidden", msg, field);
}

/* ================================================================== */
/* cron syntax                                                         */
/* ================================================================== */

/*
 * What Kubernetes CronJob accepts (robfig/cron's standard parser): five
 * fields, minute hour day-of-month month day-of-week, each a comma list of
 * `*` or `?`, a number, a name (JAN-DEC, SUN-SAT, any case) or a range a-b,
 * any of them with a step /n (n >= 1; a/n means a up to the field's
 * maximum); or one of the descriptors below. Either form may be preceded by
 * `CRON_TZ=<zone> ` or `TZ=<zone> `. The zone is checked for shape only
 * (IANA names are letters, digits and _-+/): the reconcile side loads it.
 */

#define CRON_SPACE " \t\n\r\f\v"

typedef struct cron_field {
    const char *what;           /* for messages */
    int min, max;
    const char *const *names;   /* NULL, or the names of min, min+1, ... */
} cron_field_t;

static const char *const cron_month_names[] = {"jan", "feb", "mar", "apr", "may", "jun", "jul",
                                               "aug", "sep", "oct", "nov", "dec", NULL};
static const char *const cron_day_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

static const cron_field_t cron_fields[] = {
    {"minute", 0, 59, NULL},
    {"hour", 0, 23, NULL},
    {"day-of-month", 1, 31, NULL},
    {"month", 1, 12, cron_month_names},
    {"day-of-week", 0, 6, cron_day_names},
};
#define CRON_NFIELDS (sizeof(cron_fields) / sizeof(cron_fields[0]))

static const char *const cron_descriptors[] = {"@yearly", "@annually", "@monthly", "@weekly",
                                               "@daily",  "@midnight", "@hourly",  NULL};

/* Decimal digits only; large values are capped so that bound checks still report them. */
static int cron_digits(const char *s, size_t len, int *out)
{
    if (len == 0)
        return -1;
    int v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        if (v < 1000000)
            v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

static int cron_value(const cron_field_t *f, const char *s, size_t len, int *out)
{
    if (cron_digits(s, len, out) == 0)
        return 0;
    for (int i = 0; f->names && f->names[i]; i++) {
        if (len == strlen(f->names[i]) && strncasecmp(s, f->names[i], len) == 0) {
            *out = f->min + i;
            return 0;
        }
    }
    return -1;
}

/* One element of a comma list: `*`, `?`, a, a-b, each with an optional /step. */
static int cron_element(const cron_field_t *f, const char *s, size_t len, char *why, size_t n)
{
    const char *slash = memchr(s, '/', len);
    size_t rlen = slash ? (size_t)(slash - s) : len;
    int lo, hi, step = 1;
    if (slash) {
        size_t slen = len - rlen - 1;
        if (memchr(slash + 1, '/', slen)) {
            snprintf(why, n, "too many slashes in %s field: %.*s", f->what, (int)len, s);
            return -1;
        }
        if (cron_digits(slash + 1, slen, &step) < 0 || step == 0) {
            snprintf(why, n, "step of range should be a positive number in %s field: %.*s", f->what, (int)len, s);
            return -1;
        }
    }
    if (rlen == 1 && (s[0] == '*' || s[0] == '?')) {
        lo = f->min;
        hi = f->max;
    } else {
        const char *dash = memchr(s, '-', rlen);
        size_t lo_len = dash ? (size_t)(dash - s) : rlen;
        if (dash && memchr(dash + 1, '-', rlen - lo_len - 1)) {
            snprintf(why, n, "too many hyphens in %s field: %.*s", f->what, (int)len, s);
            return -1;
        }
        if (cron_value(f, s, lo_len, &lo) < 0 ||
            (dash && cron_value(f, dash + 1, rlen - lo_len - 1, &hi) < 0)) {
            snprintf(why, n, "failed to parse %s field: %.*s", f->what, (int)len, s);
            return -1;
        }
        if (!dash)
            hi = slash ? f->max : lo;
    }
    if (lo < f->min)
        snprintf(why, n, "beginning of range (%d) below minimum (%d) in %s field: %.*s", lo, f->min, f->what,
                 (int)len, s);
    else if (hi > f->max)
        snprintf(why, n, "end of range (%d) above maximum (%d) in %s field: %.*s", hi, f->max, f->what,
                 (int)len, s);
    else if (lo > hi)
        snprintf(why, n, "beginning of range (%d) beyond end of range (%d) in %s field: %.*s", lo, hi, f->what,
                 (int)len, s);
    else
        return 0;
    return -1;
}

static int cron_field_check(const cron_field_t *f, const char *s, size_t len, char *why, size_t n)
{
    const char *end = s + len;
    for (;;) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        const char *stop = comma ? comma : end;
        if (stop == s) {
            snprintf(why, n, "empty list element in %s field", f->what);
            return -1;
        }
        if (cron_element(f, s, (size_t)(stop - s), why, n) < 0)
            return -1;
        if (!comma)
            return 0;
        s = comma + 1;
    }
}

static int cron_descriptor(const char *p, char *why, size_t n)
{
    size_t len = strcspn(p, CRON_SPACE);
    const char *rest = p + len + strspn(p + len, CRON_SPACE);
    for (int i = 0; cron_descriptors[i] && *rest == '\0'; i++)
        if (len == strlen(cron_descriptors[i]) && strncmp(p, cron_descriptors[i], len) == 0)
            return 0;
    snprintf(why, n, "unrecognized descriptor: %.64s", p);
    return -1;
}

static int cron_valid_zone(const char *z, size_t len)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)z[i]) && !strchr("_-+/", z[i]))
            return 0;
    return 1;
}

/*
 * Checks expr as a cron schedule. Returns 0, or -1 with why filled.
 * *zoned is set to 1 when expr names its own zone (CRON_TZ= or TZ=).
 */
static int cron_check(const char *expr, int *zoned, char *why, size_t n)
{
    const char *p = expr + strspn(expr, CRON_SPACE);
    *zoned = 0;
    if (*p == '\0') {
        snprintf(why, n, "empty schedule");
        return -1;
    }
    if (strncmp(p, "CRON_TZ=", 8) == 0 || strncmp(p, "TZ=", 3) == 0) {
        const char *zone = strchr(p, '=') + 1;
        size_t zlen = strcspn(zone, CRON_SPACE);
        if (!cron_valid_zone(zone, zlen)) {
            snprintf(why, n, "invalid time zone: %.*s", (int)(zlen > 64 ? 64 : zlen), zone);
            return -1;
        }
        p = zone + zlen + strspn(zone + zlen, CRON_SPACE);
        if (*p == '\0') {
            snprintf(why, n, "missing schedule after the time zone");
            return -1;
        }
        *zoned = 1;
    }
    if (*p == '@')
        return cron_descriptor(p, why, n);

    const char *start[CRON_NFIELDS];
    size_t len[CRON_NFIELDS];
    size_t count = 0;
    while (*p) {
        size_t l = strcspn(p, CRON_SPACE);
        if (count < CRON_NFIELDS) {
            start[count] = p;
            len[count] = l;
        }
        count++;
        p += l;
        p += strspn(p, CRON_SPACE);
    }
    if (count != CRON_NFIELDS) {
        snprintf(why, n, "expected exactly 5 fields (minute hour day-of-month month day-of-week), found %zu",
                 count);
        return -1;
    }
    for (size_t i = 0; i < CRON_NFIELDS; i++)
        if (cron_field_check(&cron_fields[i], start[i], len[i], why, n) < 0)
            return -1;
    return 0;
}

/* ================================================================== */
/* field rules                                                         */
/* ================================================================== */

/* LanguageAgent: spec.execution.schedule only with mode task, and valid cron. */
static int rule_schedule(const rule_input_t *in, lo_err_t *err)
{
    static const char *const field = "spec.execution.schedule";
    const json_t *exec = json_object_get(json_object_get(in->obj, "spec"), "execution");
    const char *schedule = json_string_value(json_object_get(exec, "schedule"));
    if (schedule == NULL)
        return 0;  /* absent, or not a string: the schema validator's case */
    const char *mode = json_string_value(json_object_get(exec, "mode"));
    if (mode == NULL || strcmp(mode, "task") != 0) {
        lo_err_add_cause(err, "FieldValueForbidden", "Forbidden: schedule is only allowed with mode task", field);
        return 1;
    }
    char why[256];
    int zoned = 0;
    if (cron_check(schedule, &zoned, why, sizeof(why)) < 0) {
        rule_invalid(err, field, schedule, why);
        return 1;
    }
    if (zoned && json_is_string(json_object_get(exec, "timezone"))) {
        rule_invalid(err, field, schedule, "cannot use CRON_TZ or TZ in schedule together with timezone");
        return 1;
    }
    return 0;
}

/* ================================================================== */
/* policy rules                                                        */
/* ================================================================== */

static void forbidden(const rule_input_t *in, lo_err_t *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void forbidden(const rule_input_t *in, lo_err_t *err, const char *fmt, ...)
{
    char why[LO_ERR_MESSAGE_MAX / 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    lo_err_set(err, 403, "Forbidden", "%s.%s \"%s\" is forbidden: %s", in->k->plural, SCHEMA_GROUP, in->name,
               why);
    lo_err_set_details(err, json_pack("{s:s, s:s, s:s}", "name", in->name, "group", SCHEMA_GROUP, "kind",
                                      in->k->plural));
}

/* Reads the LanguageCluster owning in->ns. Returns STORE_OK (*out new), STORE_NOT_FOUND, or < 0 with err 500. */
static int cluster_get(const rule_input_t *in, json_t **out, lo_err_t *err)
{
    cluster_read_t *c = in->cluster;
    if (!c->done) {
        lo_err_t e = {0};
        c->rc = store_txn_get(in->txn, CLUSTER_RESOURCE, "", in->ns, &c->cluster, NULL, &e);
        if (c->rc != STORE_OK && c->rc != STORE_NOT_FOUND)
            status_internal(&c->err, "reading LanguageCluster \"%s\": %.400s", in->ns, e.message);
        lo_err_clear(&e);
        c->done = 1;
    }
    if (c->rc != STORE_OK && c->rc != STORE_NOT_FOUND && err)
        lo_err_set(err, c->err.code, c->err.reason, "%s", c->err.message);
    *out = json_incref(c->cluster);
    return c->rc;
}

/*
 * Every namespaced kind, on create: a LanguageCluster named after the
 * namespace must exist and not be terminating (kube's NamespaceLifecycle
 * answers a terminating namespace the same way, with the same cause).
 */
static int rule_membership(const rule_input_t *in, lo_err_t *err)
{
    if (in->op != ADMISSION_CREATE)
        return 0;
    json_t *cluster = NULL;
    int rc = cluster_get(in, &cluster, err);
    if (rc == STORE_NOT_FOUND) {
        forbidden(in, err, "namespace \"%s\" is not managed by a LanguageCluster: create LanguageCluster \"%s\" first",
                  in->ns, in->ns);
        return -1;
    }
    if (rc != STORE_OK)
        return -1;
    int ret = 0;
    if (objmeta_is_deleting(cluster)) {
        char why[LO_ERR_MESSAGE_MAX / 2];
        snprintf(why, sizeof(why), "unable to create new content in namespace %s because it is being terminated",
                 in->ns);
        forbidden(in, err, "%s", why);
        lo_err_add_cause(err, "NamespaceTerminating", why, "metadata.namespace");
        ret = -1;
    }
    json_decref(cluster);
    return ret;
}

/* Which spec.capacity field of the LanguageCluster limits each kind. */
static const struct {
    const char *kind;
    const char *limit;
} capacity_limits[] = {
    {"LanguageModel", "maxModels"},
    {"LanguageAgent", "maxAgents"},
    {"LanguageTool", "maxTools"},
    {"LanguagePersona", "maxPersonas"},
};

static const char *capacity_limit_of(const char *kind)
{
    for (size_t i = 0; i < sizeof(capacity_limits) / sizeof(capacity_limits[0]); i++)
        if (strcmp(capacity_limits[i].kind, kind) == 0)
            return capacity_limits[i].limit;
    return NULL;
}

/*
 * Every limited kind, on create: the count of objects of the kind in the
 * namespace stays within the LanguageCluster's limit. Counting inside the
 * write transaction is what makes this atomic: concurrent creates are
 * serialised by the store, so none can see a stale count. An unset limit
 * means no limit.
 */
static int rule_capacity(const rule_input_t *in, lo_err_t *err)
{
    const char *limit = capacity_limit_of(in->k->kind);
    if (in->op != ADMISSION_CREATE || limit == NULL)
        return 0;
    json_t *cluster = NULL;
    int rc = cluster_get(in, &cluster, err);
    if (rc == STORE_NOT_FOUND)
        return 0;  /* rule_membership answers that */
    if (rc != STORE_OK)
        return -1;
    int ret = 0;
    const json_t *max = json_object_get(json_object_get(json_object_get(cluster, "spec"), "capacity"), limit);
    if (json_is_integer(max)) {
        int64_t used = 0;
        lo_err_t e = {0};
        if (store_txn_count(in->txn, in->k->plural, in->ns, &used, &e) < 0) {
            status_internal(err, "counting %s in namespace \"%s\": %s", in->k->plural, in->ns, e.message);
            ret = -1;
        } else if (used >= json_integer_value(max)) {
            forbidden(in, err,
                      "exceeded capacity of LanguageCluster \"%s\": %s=%" JSON_INTEGER_FORMAT ", used %" PRId64,
                      in->ns, limit, json_integer_value(max), used);
            ret = -1;
        }
        lo_err_clear(&e);
    }
    json_decref(cluster);
    return ret;
}

/* ================================================================== */
/* the registry                                                        */
/* ================================================================== */

static const struct rule {
    const char *kind;  /* NULL: every namespaced kind */
    rule_sort_t sort;
    rule_fn fn;
} rules[] = {
    {NULL, RULE_POLICY, rule_membership},
    {"LanguageModel", RULE_FIELD, modelrules_provider_choice},
    {"LanguageModel", RULE_FIELD, modelrules_params_credentials},
    {"LanguageModel", RULE_FIELD, modelrules_provider_fields},
    {"LanguageModel", RULE_FIELD, modelrules_endpoints},
    {"LanguageModel", RULE_FIELD, modelrules_custom},
    {"LanguageModel", RULE_FIELD, modelrules_upstreams},
    {"LanguageAgent", RULE_FIELD, rule_schedule},
    {"LanguageAgent", RULE_FIELD, keyrules_container_env},
    {"LanguageTool", RULE_FIELD, keyrules_container_env},
    {"LanguageAgent", RULE_CROSS, keyrules_model_secrets},
    {"LanguageTool", RULE_CROSS, keyrules_model_secrets},
    {"LanguageModel", RULE_CROSS, keyrules_model_secrets},
    {NULL, RULE_POLICY, rule_capacity},
};

static int rule_applies(const struct rule *r, const schema_kind_t *k)
{
    return r->kind ? strcmp(r->kind, k->kind) == 0 : k->namespaced;
}

static const char *meta_string(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(json_object_get(obj, "metadata"), key));
    return s ? s : "";
}

/* Which rules a check runs. */
typedef enum rule_set {
    RULES_ALL,
    RULES_WRITER,  /* the writer's atomic re-check: cross and policy rules */
    RULES_FIELDS,  /* no store needed */
} rule_set_t;

static int rule_selected(const struct rule *r, const schema_kind_t *k, rule_set_t set)
{
    if (!rule_applies(r, k))
        return 0;
    switch (set) {
    case RULES_ALL:
        return 1;
    case RULES_WRITER:
        return r->sort != RULE_FIELD;
    case RULES_FIELDS:
        return r->sort == RULE_FIELD;
    }
    return 0;
}

/* Runs the rules of k that set selects. */
static int run_rules(store_txn_t *txn, const schema_kind_t *k, admission_operation_t op, const json_t *old,
                     const json_t *obj, rule_set_t set, lo_err_t *err)
{
    assert(k != NULL && obj != NULL);
    cluster_read_t cluster = {0};
    rule_input_t in = {
        .txn = txn, .cluster = &cluster, .k = k, .op = op, .old = old, .obj = obj,
        .name = meta_string(obj, "name"), .ns = meta_string(obj, "namespace"),
    };
    lo_err_t invalid = {0};  /* causes gathered from field and cross rules */
    int causes = 0, ret = 0;
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]) && ret == 0; i++) {
        const struct rule *r = &rules[i];
        if (!rule_selected(r, k, set))
            continue;
        if (r->sort != RULE_POLICY)
            causes += r->fn(&in, &invalid);
        else if (causes == 0 && r->fn(&in, err) < 0)
            ret = -1;
    }
    if (ret == 0 && causes > 0) {
        status_invalid(&invalid, k->kind, SCHEMA_GROUP, in.name);
        ret = -1;
        if (err) {
            lo_err_clear(err);
            *err = invalid;
            memset(&invalid, 0, sizeof(invalid));
        }
    }
    lo_err_clear(&invalid);
    json_decref(cluster.cluster);
    lo_err_clear(&cluster.err);
    return ret;
}

int admission_check(store_txn_t *txn, const schema_kind_t *k, admission_operation_t op, const json_t *old,
                    const json_t *obj, lo_err_t *err)
{
    return run_rules(txn, k, op, old, obj, RULES_ALL, err);
}

int admission_check_fields(const schema_kind_t *k, admission_operation_t op, const json_t *old, const json_t *obj,
                           lo_err_t *err)
{
    return run_rules(NULL, k, op, old, obj, RULES_FIELDS, err);
}

int admission_check_writer(store_txn_t *txn, const schema_kind_t *k, admission_operation_t op, const json_t *old,
                           const json_t *obj, lo_err_t *err)
{
    return run_rules(txn, k, op, old, obj, RULES_WRITER, err);
}

int admission_has_writer_rules(const schema_kind_t *k, admission_operation_t op)
{
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        const struct rule *r = &rules[i];
        if (!rule_applies(r, k) || r->sort == RULE_FIELD)
            continue;
        /* membership and capacity act on creates only */
        if (r->sort == RULE_CROSS || op == ADMISSION_CREATE)
            return 1;
    }
    return 0;
}
