/*
 * fuzz_request.c - the whole request path in-process: what the HTTP layer
 * hands over (method, target with its query, headers, body) through
 * authentication (auth.h) and api_call() (api.h: authorization,
 * impersonation, request info, options, decoding, admission, patches,
 * apply, the store's writer, derived status, encoding), against a store in
 * a temporary folder, as a user of group system:masters. No h2o: the
 * transport's part ends where api.h begins.
 *
 * Input: up to MAX_REQUESTS requests written as HTTP/1.1 writes them:
 *   METHOD TARGET\n
 *   name: value\n     (any number of headers; names are lower-cased, as h2o does)
 *   \n
 *   body              (content-length bytes when that header is there, and
 *                      the next request follows; else the rest of the input)
 * A request that sends no Authorization header gets the bearer token of the
 * system:masters user; one that sends its own is authenticated with it.
 *
 * The store starts with a LanguageCluster "default" (owning namespace
 * default), a LanguageModel "gpt", a LanguageTool "web", a LanguagePersona
 * "p" and a LanguageAgent "a1" using them. It lives as long as the process:
 * requests of earlier inputs leave their objects, so a crash may need the
 * requests of one input only, or the store an earlier input left (then it
 * is the sequence that reproduces it). When it has taken RESET_AFTER
 * changes it is made afresh.
 *
 * Checked for every answer besides crashes and sanitizer reports (these
 * are the server's promises to every client):
 *  - the status is an HTTP status, a body has a Content-Type, and every
 *    header value is safe to send (valid UTF-8, no line break, no NUL);
 *  - a JSON body is valid JSON (hence valid UTF-8), a YAML body parses;
 *  - an error (4xx, 5xx) in JSON is a Status of kind Status, status
 *    Failure, with its code equal to the HTTP status;
 *  - no 5xx but the honest 504 of a resourceVersion from the future: the
 *    store does not fail here, so a 500 is a bug that a client caused;
 *  - a refused request, and any read, changes nothing: the store's
 *    resourceVersion stays where it was; and it never goes back;
 *  - the object a write answers with (JSON, no dry run) is the object the
 *    store holds: same bytes, derived status included;
 *  - a watch's replay, read page by page as the transport reads it
 *    (watch.h), is lines of JSON events: {type, object}.
 *
 * LANGOP_FUZZ_TRACE=1 prints each request's line and answer (to see what
 * an input does, or what a crasher sent before it crashed).
 */
#include "fuzz.h"

#include <strings.h>
#include <unistd.h>

#include "langop/api/api.h"
#include "langop/registry/watch.h"
#include "langop/request/auth.h"
#include "langop/request/authz.h"
#include "langop/storage/store.h"

#define MAX_REQUESTS 8
#define MAX_HEADERS 64
#define RESET_AFTER 2000
#define TOKEN "fuzz-masters-token"

static struct {
    char dir[64], db[96], tokens[96];
    store_t *store;
    api_t *api;
    auth_t *auth;
    authz_t *authz;
    int64_t base_rv; /* the store's resourceVersion once seeded */
    int trace;       /* LANGOP_FUZZ_TRACE */
} g;

/* ---- requests ---- */

static char *copy(const char *p, size_t n)
{
    return lo_strndup(p, n);
}

static void add_header(api_request_t *req, const char *name, size_t name_len, const char *value, size_t value_len)
{
    api_header_t *h = &req->headers[req->header_count++];
    h->name = copy(name, name_len);
    for (char *c = h->name; *c; c++)
        *c = (char)((*c >= 'A' && *c <= 'Z') ? *c - 'A' + 'a' : *c);
    h->value = copy(value, value_len);
}

/* The first header named name as server.c copies it (new string), or NULL. */
static char *header_dup(const api_request_t *req, const char *name)
{
    const char *v = api_request_header(req, name);
    return v ? lo_strdup(v) : NULL;
}

/* The line at *p (without \r\n); advances *p past it. Returns 0 at the end of the input. */
static int next_line(const char **p, const char *end, const char **line, size_t *len)
{
    if (*p >= end)
        return 0;
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    const char *stop = nl ? nl : end;
    *line = *p;
    *len = (size_t)(stop - *p);
    if (*len > 0 && (*line)[*len - 1] == '\r')
        (*len)--;
    *p = nl ? nl + 1 : end;
    return 1;
}

/*
 * Reads one request from [*p, end) into req (zeroed by the caller) and
 * advances *p past it. Returns 0 when nothing is left.
 */
static int read_request(const char **p, const char *end, api_request_t *req)
{
    const char *line;
    size_t len;
    if (!next_line(p, end, &line, &len))
        return 0;
    const char *sp = memchr(line, ' ', len);
    size_t mlen = sp ? (size_t)(sp - line) : len;
    req->method = copy(line, mlen);
    const char *target = sp ? sp + 1 : "/";
    size_t tlen = sp ? len - mlen - 1 : 1;
    if (tlen >= 9 && memcmp(target + tlen - 9, " HTTP/1.1", 9) == 0)
        tlen -= 9;
    req->target = copy(target, tlen);

    req->headers = lo_calloc(MAX_HEADERS + 1, sizeof(*req->headers));
    int has_auth = 0;
    long body_len = -1;
    api_request_t parsed = {.headers = req->headers};
    while (next_line(p, end, &line, &len) && len > 0) {
        const char *colon = memchr(line, ':', len);
        if (colon == NULL || colon == line || parsed.header_count >= MAX_HEADERS)
            continue;
        const char *v = colon + 1, *vend = line + len;
        while (v < vend && (*v == ' ' || *v == '\t'))
            v++;
        while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t'))
            vend--;
        add_header(&parsed, line, (size_t)(colon - line), v, (size_t)(vend - v));
        const api_header_t *h = &parsed.headers[parsed.header_count - 1];
        if (strcmp(h->name, "authorization") == 0)
            has_auth = 1;
        if (strcmp(h->name, "content-length") == 0 && body_len < 0)
            body_len = strtol(h->value, NULL, 10);
    }
    req->header_count = parsed.header_count;
    if (!has_auth) { /* the masters user's token, first, as a client would send it */
        memmove(req->headers + 1, req->headers, req->header_count * sizeof(*req->headers));
        req->header_count++;
        req->headers[0] = (api_header_t){lo_strdup("authorization"), lo_strdup("Bearer " TOKEN)};
    }
    size_t left = (size_t)(end - *p);
    size_t n = body_len >= 0 && (size_t)body_len < left ? (size_t)body_len : left;
    if (n > 0 || body_len >= 0) {
        req->body = copy(*p, n);
        req->body_len = n;
    }
    *p += n;
    req->accept = header_dup(req, "accept");
    req->content_type = header_dup(req, "content-type");
    req->if_none_match = header_dup(req, "if-none-match");
    req->user_agent = header_dup(req, "user-agent");
    return 1;
}

/* ---- the store and the api ---- */

static int64_t current_rv(void)
{
    int64_t rv = -1;
    lo_err_t err = {0};
    FUZZ_CHECK(store_current_rv(g.store, &rv, &err) == 0, "store_current_rv: %s", err.message);
    return rv;
}

/* One request as the server makes it: authentication (server.c's admit_request), then api_call. */
static int serve(api_request_t *req, api_response_t *resp)
{
    int outcome = auth_request(g.auth, req);
    if (outcome == AUTH_UNAUTHORIZED) {
        char *path = lo_strndup(req->target, strcspn(req->target, "?"));
        int allowed = auth_path_always_allowed(path);
        free(path);
        if (!allowed)
            return 0; /* the server's 401 */
        api_user_free(&req->user);
        req->user.name = lo_strdup("system:anonymous");
        req->user.groups[0] = lo_strdup("system:unauthenticated");
    }
    api_call(g.api, req, resp);
    return 1;
}

static void seed(const char *target, const char *body)
{
    api_request_t req = {.method = lo_strdup("POST"),
                         .target = lo_strdup(target),
                         .content_type = lo_strdup("application/json"),
                         .body = lo_strdup(body),
                         .body_len = strlen(body)};
    req.headers = lo_calloc(1, sizeof(*req.headers));
    req.headers[0] = (api_header_t){lo_strdup("authorization"), lo_strdup("Bearer " TOKEN)};
    req.header_count = 1;
    api_response_t resp = {0};
    FUZZ_CHECK(serve(&req, &resp) && resp.status == 201, "seeding %s: %d %.*s", target, resp.status, (int)resp.body_len,
               resp.body ? resp.body : "");
    api_response_free(&resp);
    api_request_free(&req);
}

static void remove_store_files(void)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        char p[128];
        snprintf(p, sizeof(p), "%s%s", g.db, suffixes[i]);
        unlink(p);
    }
}

static void open_store(void)
{
    lo_err_t err = {0};
    remove_store_files();
    store_options_t so = {.path = g.db, .sync_full = 0};
    g.store = store_open(&so, &err);
    FUZZ_CHECK(g.store != NULL, "store_open: %s", err.message);
    api_options_t ao = {.server_address = "127.0.0.1:6443", .cluster_domain = "cluster.local", .authz = g.authz};
    g.api = api_new(g.store, &ao);
    api_set_ready(g.api, 1);
    static const char ns[] = "/apis/langop.io/v1alpha1/namespaces/default/";
    seed("/apis/langop.io/v1alpha1/languageclusters",
         "{\"apiVersion\":\"langop.io/v1alpha1\",\"kind\":\"LanguageCluster\",\"metadata\":{\"name\":\"default\"},"
         "\"spec\":{\"domain\":\"example.com\"}}");
    char path[160];
    snprintf(path, sizeof(path), "%slanguagemodels", ns);
    seed(path, "{\"apiVersion\":\"langop.io/v1alpha1\",\"kind\":\"LanguageModel\",\"metadata\":{\"name\":\"gpt\","
               "\"labels\":{\"app\":\"web\"}},\"spec\":{\"provider\":\"openai\",\"modelName\":\"gpt-4o\","
               "\"apiKeySecretRef\":{\"name\":\"k\"}}}");
    snprintf(path, sizeof(path), "%slanguagetools", ns);
    seed(path, "{\"apiVersion\":\"langop.io/v1alpha1\",\"kind\":\"LanguageTool\",\"metadata\":{\"name\":\"web\"},"
               "\"spec\":{\"image\":\"ghcr.io/example/web:1\"}}");
    snprintf(path, sizeof(path), "%slanguagepersonas", ns);
    seed(path, "{\"apiVersion\":\"langop.io/v1alpha1\",\"kind\":\"LanguagePersona\",\"metadata\":{\"name\":\"p\"},"
               "\"spec\":{\"tone\":\"formal\"}}");
    snprintf(path, sizeof(path), "%slanguageagents", ns);
    seed(path, "{\"apiVersion\":\"langop.io/v1alpha1\",\"kind\":\"LanguageAgent\",\"metadata\":{\"name\":\"a1\"},"
               "\"spec\":{\"image\":\"ghcr.io/example/agent:1\",\"models\":[{\"name\":\"gpt\"}],"
               "\"tools\":[{\"name\":\"web\"}],\"persona\":\"p\"}}");
    g.base_rv = current_rv();
}

static void close_store(void)
{
    api_free(g.api);
    store_close(g.store);
    g.api = NULL;
    g.store = NULL;
    remove_store_files();
}

static void cleanup(void)
{
    if (g.store)
        close_store();
    auth_free(g.auth);
    authz_free(g.authz);
    unlink(g.tokens);
    rmdir(g.dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    lo_verbosity = -1; /* the request log and warnings: not read here, and slow */
    g.trace = getenv("LANGOP_FUZZ_TRACE") != NULL && strcmp(getenv("LANGOP_FUZZ_TRACE"), "0") != 0;
    fuzz_registry();
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(g.dir, sizeof(g.dir), "%.40s/lo-fuzz-req.XXXXXX", tmp);
    FUZZ_CHECK(mkdtemp(g.dir) != NULL, "mkdtemp %s", g.dir);
    snprintf(g.db, sizeof(g.db), "%s/store.db", g.dir);
    snprintf(g.tokens, sizeof(g.tokens), "%s/tokens.csv", g.dir);
    FILE *f = fopen(g.tokens, "w");
    FUZZ_CHECK(f != NULL, "cannot write %s", g.tokens);
    fputs(TOKEN ",fuzzer,fuzzer-uid,\"system:masters\"\nother-token,bob,bob-uid,\"developers\"\n", f);
    fclose(f);
    lo_err_t err = {0};
    auth_options_t ao = {.token_file = g.tokens};
    g.auth = auth_new(&ao, &err);
    FUZZ_CHECK(g.auth != NULL, "auth_new: %s", err.message);
    authz_options_t zo = {.mode = AUTHZ_ALWAYS_ALLOW};
    g.authz = authz_new(&zo, &err);
    FUZZ_CHECK(g.authz != NULL, "authz_new: %s", err.message);
    open_store();
    atexit(cleanup);
    return 0;
}

/* ---- what every answer must be ---- */

static int starts_with(const char *s, const char *prefix)
{
    return s != NULL && strncasecmp(s, prefix, strlen(prefix)) == 0;
}

static void check_headers(const api_response_t *resp)
{
    for (size_t i = 0; i < resp->header_count; i++) {
        const char *name = resp->header_names[i], *value = resp->header_values[i];
        FUZZ_CHECK(name[0] != '\0' && strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-") == strlen(name),
                   "header name %s", name);
        FUZZ_CHECK(text_utf8_valid(value, strlen(value)) && strpbrk(value, "\r\n") == NULL,
                   "header %s is not safe to send: %s", name, value);
    }
}

static void check_body(const api_request_t *req, const api_response_t *resp)
{
    const char *ct = resp->content_type;
    FUZZ_CHECK(resp->body_len == 0 || ct != NULL, "a body without a Content-Type (status %d)", resp->status);
    FUZZ_CHECK(resp->body_len == 0 || resp->body != NULL, "a body length without a body");
    if (resp->body_len == 0)
        return;
    if (starts_with(ct, "application/json")) {
        json_error_t jerr;
        json_t *v = json_loadb(resp->body, resp->body_len, JSON_DECODE_ANY, &jerr);
        FUZZ_CHECK(v != NULL, "%s %s: the JSON body does not parse (%s): %.*s", req->method, req->target, jerr.text,
                   (int)resp->body_len, resp->body);
        if (resp->status >= 400) {
            const char *kind = json_string_value(json_object_get(v, "kind"));
            const char *st = json_string_value(json_object_get(v, "status"));
            json_t *code = json_object_get(v, "code");
            FUZZ_CHECK(kind && strcmp(kind, "Status") == 0 && st && strcmp(st, "Failure") == 0 &&
                           json_integer_value(code) == resp->status && json_is_string(json_object_get(v, "message")),
                       "%s %s: error %d is not a Status: %.*s", req->method, req->target, resp->status,
                       (int)resp->body_len, resp->body);
        }
        json_decref(v);
    } else if (starts_with(ct, "application/yaml")) {
        lo_err_t err = {0};
        json_t *v = codec_decode_yaml(resp->body, resp->body_len, &err);
        FUZZ_CHECK(v != NULL, "%s %s: the YAML body does not parse: %s", req->method, req->target, err.message);
        json_decref(v);
        lo_err_clear(&err);
    } else if (starts_with(ct, "text/plain")) {
        FUZZ_CHECK(text_utf8_valid(resp->body, resp->body_len), "a text body that is not UTF-8");
    }
}

/* A write's answer is what the store holds (a create, update or patch that succeeded, in JSON, not a dry run). */
static void check_stored(const api_request_t *req, const api_response_t *resp)
{
    if (!(strcmp(req->method, "POST") == 0 || strcmp(req->method, "PUT") == 0 || strcmp(req->method, "PATCH") == 0) ||
        (resp->status != 200 && resp->status != 201) || !starts_with(resp->content_type, "application/json") ||
        strstr(resp->content_type, "as=Table") != NULL || strstr(req->target, "dryRun") != NULL)
        return;
    json_t *answer = json_loadb(resp->body, resp->body_len, 0, NULL);
    const schema_kind_t *k = schema_kind_by_kind(json_string_value(json_object_get(answer, "kind")));
    const char *api_version = json_string_value(json_object_get(answer, "apiVersion"));
    if (k == NULL || api_version == NULL || strcmp(api_version, SCHEMA_GROUP_VERSION) != 0) {
        json_decref(answer);
        return;
    }
    json_t *meta = json_object_get(answer, "metadata");
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    const char *name = json_string_value(json_object_get(meta, "name"));
    json_t *stored = NULL;
    lo_err_t err = {0};
    int rc = store_get(g.store, k->plural, ns ? ns : "", name ? name : "", &stored, NULL, &err);
    char *text = stored ? codec_encode_json(stored) : NULL;
    FUZZ_CHECK(rc == STORE_OK && json_equal(stored, answer),
               "%s %s answered %d with an object the store does not hold:\n answer %.*s\n stored %s", req->method,
               req->target, resp->status, (int)resp->body_len, resp->body, text ? text : err.message);
    free(text);
    json_decref(stored);
    json_decref(answer);
    lo_err_clear(&err);
}

/* Every line of a watch page is a JSON event of a known type with an object. */
static void check_watch_lines(const api_request_t *req, const watch_page_t *page)
{
    static const char *const types[] = {"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"};
    const char *p = page->data, *end = page->data ? page->data + page->len : NULL;
    while (p != NULL && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        FUZZ_CHECK(nl != NULL, "%s: a watch line without its end", req->target);
        json_error_t jerr;
        json_t *ev = json_loadb(p, (size_t)(nl - p), 0, &jerr);
        const char *type = json_string_value(json_object_get(ev, "type"));
        int known = 0;
        for (size_t i = 0; type && i < sizeof(types) / sizeof(types[0]); i++)
            known |= strcmp(type, types[i]) == 0;
        FUZZ_CHECK(known && json_is_object(json_object_get(ev, "object")), "%s: a watch line is not an event: %.*s",
                   req->target, (int)(nl - p), p);
        json_decref(ev);
        p = nl + 1;
    }
}

/* The replay of a watch, read as the transport reads it: a page at a time until it has caught up. */
static void check_watch(const api_request_t *req, const api_response_t *resp)
{
    watch_cursor_t cursor;
    watch_cursor_init(&cursor, resp->watch);
    int with_columns = 1;
    for (int i = 0; i < 16; i++) {
        watch_page_t page = {0};
        watch_read_page(g.store, resp->watch, &cursor, with_columns, &page);
        check_watch_lines(req, &page);
        with_columns &= !page.columns_sent;
        int done = page.caught_up || page.failed;
        watch_page_free(&page);
        if (done)
            break;
    }
    watch_cursor_free(&cursor);
}

static int is_read(const char *method)
{
    return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (current_rv() - g.base_rv > RESET_AFTER) {
        close_store();
        open_store();
    }
    const char *p = (const char *)data, *end = p + size;
    for (int i = 0; i < MAX_REQUESTS; i++) {
        api_request_t req = {0};
        if (!read_request(&p, end, &req)) {
            api_request_free(&req);
            break;
        }
        int64_t before = current_rv();
        api_response_t resp = {0};
        int served = serve(&req, &resp);
        if (g.trace)
            fprintf(stderr, "%s %s -> %d %.*s\n", req.method, req.target, served ? resp.status : 401,
                    (int)(resp.body_len < 2000 ? resp.body_len : 2000), resp.body ? resp.body : "");
        if (served) {
            int64_t after = current_rv();
            FUZZ_CHECK(resp.status >= 100 && resp.status <= 599, "status %d", resp.status);
            FUZZ_CHECK(resp.status < 500 || resp.status == 504, "%s %s answered %d: %.*s", req.method, req.target,
                       resp.status, (int)resp.body_len, resp.body ? resp.body : "");
            check_headers(&resp);
            check_body(&req, &resp);
            FUZZ_CHECK(after >= before, "the resourceVersion went back from %lld to %lld", (long long)before,
                       (long long)after);
            FUZZ_CHECK(after == before || (resp.status < 400 && !is_read(req.method)),
                       "%s %s answered %d but the store changed (%lld -> %lld): %.*s", req.method, req.target,
                       resp.status, (long long)before, (long long)after, (int)resp.body_len,
                       resp.body ? resp.body : "");
            check_stored(&req, &resp);
            if (resp.watch != NULL)
                check_watch(&req, &resp);
        }
        api_response_free(&resp);
        api_request_free(&req);
    }
    return 0;
}
