/*
 * fuzz_render.c - the derived config (derive/render.c): the LiteLLM config
 * of a cluster's gateway and the config and environment of an agent, from
 * fuzzed objects.
 *
 * Input: a YAML (or JSON) document as tests/golden/inputs/ hold them:
 * {namespace, clusterDomain, cluster, models, agent, tools, personas}.
 * The renderers get the lists as they are (they promise an error, not a
 * crash, for what is not a list of their kind), then again with only the
 * objects the API would have stored (valid for their kind, in the
 * namespace, names unique), and those a second time in reverse order.
 * Checked besides crashes: the output YAML parses; a refusal says why;
 * for stored objects the output does not depend on their order (byte for
 * byte, hash included), as render.h promises.
 */
#include "fuzz.h"
#include "langop/core/selector.h"
#include "langop/derive/render.h"

/* The objects of items (borrowed array) that the API could have stored as kind in ns: a new array. */
static json_t *storable(const char *kind, const json_t *items, const char *ns)
{
    const schema_kind_t *k = schema_kind_by_kind(kind);
    json_t *out = json_array(), *names = json_object();
    size_t i;
    json_t *item;
    json_array_foreach(items, i, item)
    {
        if (!json_is_object(item))
            continue;
        json_t *obj = json_deep_copy(item);
        json_object_set_new(obj, "apiVersion", json_string(SCHEMA_GROUP_VERSION));
        json_object_set_new(obj, "kind", json_string(kind));
        lo_err_t err = {0};
        int ok = objmeta_check_envelope(k, obj, &err) == 0;
        if (ok) {
            json_t *status = json_incref(json_object_get(obj, "status")); /* derived and reconciled, kept */
            validate_prune(k, obj, NULL);
            validate_default(k, obj);
            ok = objmeta_prepare_create(k, ns, obj, &err) == 0 && objmeta_get_string(obj, "name") &&
                 json_object_get(names, objmeta_get_string(obj, "name")) == NULL;
            if (status)
                json_object_set_new(obj, "status", status);
            ok = ok && validate_object(k, obj, &err) == 0 &&
                 admission_check_fields(k, ADMISSION_CREATE, NULL, obj, &err) == 0;
        }
        if (ok) {
            json_object_set_new(names, objmeta_get_string(obj, "name"), json_true());
            json_array_append(out, obj);
        }
        json_decref(obj);
        lo_err_clear(&err);
    }
    json_decref(names);
    return out;
}

static json_t *reversed(const json_t *a)
{
    json_t *r = json_array();
    for (size_t i = json_array_size(a); i > 0; i--)
        json_array_append(r, json_array_get(a, i - 1));
    return r;
}

/* A rendered result that succeeded: YAML that parses, an env array. */
static void check_result(const render_result_t *r, const char *what)
{
    if (r->yaml != NULL) {
        lo_err_t err = {0};
        json_t *v = codec_decode_yaml(r->yaml, strlen(r->yaml), &err);
        FUZZ_CHECK(v != NULL, "%s: the rendered YAML does not parse: %s\n%s", what, err.message, r->yaml);
        json_decref(v);
        lo_err_clear(&err);
    }
    FUZZ_CHECK(r->env == NULL || json_is_array(r->env), "%s: env is not an array", what);
}

/* json_equal, for which two NULLs differ */
static int same_json(const json_t *a, const json_t *b)
{
    return a == NULL ? b == NULL : b != NULL && json_equal(a, b);
}

static void check_same(const render_result_t *a, const render_result_t *b, const char *what)
{
    char *ea = a->env ? codec_encode_json(a->env) : NULL, *eb = b->env ? codec_encode_json(b->env) : NULL;
    FUZZ_CHECK((a->yaml == NULL) == (b->yaml == NULL) && (a->yaml == NULL || strcmp(a->yaml, b->yaml) == 0) &&
                   (ea == NULL) == (eb == NULL) && (ea == NULL || strcmp(ea, eb) == 0) && strcmp(a->hash, b->hash) == 0,
               "%s depends on the order of its inputs:\n%s\n---\n%s", what, a->yaml ? a->yaml : "",
               b->yaml ? b->yaml : "");
    FUZZ_CHECK(same_json(a->unresolved, b->unresolved) && same_json(a->served, b->served),
               "%s: unresolved or served depend on the order", what);
    free(ea);
    free(eb);
}

/* Renders the gateway and, if there is an agent, its config; must: 1 when every render must succeed. */
static void render_all(const char *ns, const char *domain, const json_t *cluster, const json_t *agent,
                       const json_t *models, const json_t *tools, const json_t *personas, int must, render_result_t *gw,
                       render_result_t *ag)
{
    lo_err_t err = {0};
    memset(ag, 0, sizeof(*ag));
    int rc = render_gateway_config(ns, domain, cluster, models, gw, &err);
    if (rc == 0)
        check_result(gw, "gateway");
    FUZZ_CHECK(rc == 0 || (!must && err.message[0]), "render_gateway_config refused stored objects: %s", err.message);
    lo_err_clear(&err);
    render_result_t verdict = {0};
    rc = render_gateway_verdict(ns, models, &verdict, &err);
    if (rc == 0 && gw->served)
        FUZZ_CHECK(same_json(verdict.served, gw->served) && same_json(verdict.unresolved, gw->unresolved),
                   "the verdict differs from the config");
    render_result_free(&verdict);
    lo_err_clear(&err);
    if (agent != NULL) {
        rc = render_agent_config(agent, cluster, domain, models, tools, personas, ag, &err);
        if (rc == 0)
            check_result(ag, "agent");
        FUZZ_CHECK(rc == 0 || (!must && err.message[0]), "render_agent_config refused stored objects: %s", err.message);
        lo_err_clear(&err);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_registry();
    lo_err_t err = {0};
    json_t *in = codec_decode_auto((const char *)data, size, &err);
    lo_err_clear(&err);
    if (!json_is_object(in)) {
        json_decref(in);
        return 0;
    }
    const char *ns = json_string_value(json_object_get(in, "namespace"));
    const char *domain = json_string_value(json_object_get(in, "clusterDomain"));
    const json_t *agent = json_object_get(in, "agent"), *cluster = json_object_get(in, "cluster");
    json_t *models = json_object_get(in, "models"), *tools = json_object_get(in, "tools");
    json_t *personas = json_object_get(in, "personas");
    const char *agent_ns = json_string_value(json_object_get(json_object_get(agent, "metadata"), "namespace"));
    if (ns == NULL)
        ns = agent_ns ? agent_ns : "default";
    if (domain == NULL)
        domain = "cluster.local";

    render_result_t gw, ag;
    render_all(ns, domain, cluster, agent, models, tools, personas, 0, &gw, &ag);
    render_result_free(&gw);
    render_result_free(&ag);
    for (size_t i = 0; i + 1 < json_array_size(models) && i < 8; i++)
        render_gateway_same(json_array_get(models, i), json_array_get(models, i + 1));

    /* what the store could hold: namespace ns, valid objects, unique names */
    if (label_subdomain_problem(ns) == NULL && label_subdomain_problem(domain) == NULL) {
        json_t *m = storable("LanguageModel", models, ns), *t = storable("LanguageTool", tools, ns);
        json_t *p = storable("LanguagePersona", personas, ns), *one = json_pack("[O]", agent ? agent : json_null());
        json_t *agents = agent ? storable("LanguageAgent", one, ns) : json_array();
        json_t *clusters = json_pack("[O]", cluster ? cluster : json_null()),
               *c = storable("LanguageCluster", clusters, "");
        const json_t *a = json_array_get(agents, 0), *cl = json_array_get(c, 0);
        json_t *mr = reversed(m), *tr = reversed(t), *pr = reversed(p);
        render_result_t gw2, ag2;
        render_all(ns, domain, cl, a, m, t, p, 1, &gw, &ag);
        render_all(ns, domain, cl, a, mr, tr, pr, 1, &gw2, &ag2);
        check_same(&gw, &gw2, "the gateway config");
        if (a != NULL)
            check_same(&ag, &ag2, "the agent config");
        render_result_free(&gw);
        render_result_free(&ag);
        render_result_free(&gw2);
        render_result_free(&ag2);
        json_decref(mr);
        json_decref(tr);
        json_decref(pr);
        json_decref(m);
        json_decref(t);
        json_decref(p);
        json_decref(one);
        json_decref(agents);
        json_decref(clusters);
        json_decref(c);
    }
    json_decref(in);
    return 0;
}
