/*
 * kubeconfig.c - kube_config_t from the service account or a kubeconfig
 * file, and the token file cache (langop/kube/kubeconfig.h).
 *
 * The kubeconfig is decoded with codec_decode_auto (libyaml) into a
 * jansson tree, then looked up by name: contexts[].name -> context.cluster
 * and context.user -> clusters[].cluster and users[].user.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "langop/core/codec.h"
#include "langop/kube/kubeconfig.h"

#define KUBECONFIG_MAX_BYTES (4 << 20)
#define TOKEN_MAX_BYTES (64 << 10)

static kube_config_t *config_new(void)
{
    kube_config_t *c = lo_calloc(1, sizeof(*c));
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

void kubeconfig_free(kube_config_t *c)
{
    if (c == NULL)
        return;
    free(c->server);
    free(c->ca.data);
    free(c->ca_file);
    free(c->cert.data);
    free(c->cert_file);
    free(c->key.data);
    free(c->key_file);
    free(c->token);
    free(c->token_file);
    free(c->token_cached);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* The whole of a file, NUL-terminated (caller frees); NULL and errno on failure. */
static char *read_file(const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    lo_buf_t b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (b.len + n > max) {
            fclose(f);
            free(b.data);
            errno = EFBIG;
            return NULL;
        }
        lo_buf_put(&b, chunk, n);
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(b.data);
        errno = EIO;
        return NULL;
    }
    if (len)
        *len = b.len;
    return b.data ? b.data : lo_strdup("");
}

/* s without leading and trailing white space, as a new string. */
static char *trimmed(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        n--;
    return lo_strndup(s, n);
}

static int file_exists(const char *path, const char *what, lo_err_t *err)
{
    if (access(path, R_OK) == 0)
        return 0;
    lo_err_set(err, 0, "", "%s %s: %s", what, path, strerror(errno));
    return -1;
}

/* ---- in-cluster ---- */

kube_config_t *kubeconfig_in_cluster(const kube_incluster_t *paths, lo_err_t *err)
{
    kube_incluster_t p = paths ? *paths : (kube_incluster_t){0};
    if (p.token_file == NULL)
        p.token_file = KUBE_SA_TOKEN_FILE;
    if (p.ca_file == NULL)
        p.ca_file = KUBE_SA_CA_FILE;
    if (p.host == NULL)
        p.host = getenv("KUBERNETES_SERVICE_HOST");
    if (p.port == NULL)
        p.port = getenv("KUBERNETES_SERVICE_PORT");
    if (p.host == NULL || *p.host == '\0' || p.port == NULL || *p.port == '\0') {
        lo_err_set(err, 0, "", "not in a cluster: KUBERNETES_SERVICE_HOST and "
                   "KUBERNETES_SERVICE_PORT must be set");
        return NULL;
    }
    if (file_exists(p.ca_file, "service account CA", err) < 0 ||
        file_exists(p.token_file, "service account token", err) < 0)
        return NULL;
    kube_config_t *c = config_new();
    int v6 = strchr(p.host, ':') != NULL && p.host[0] != '[';
    c->server = lo_sprintf("https://%s%s%s:%s", v6 ? "[" : "", p.host, v6 ? "]" : "", p.port);
    c->ca_file = lo_strdup(p.ca_file);
    c->token_file = lo_strdup(p.token_file);
    return c;
}

/* ---- kubeconfig file ---- */

/* The .field object of the entry of list `key` whose name is name, or NULL. */
static json_t *named_entry(json_t *doc, const char *key, const char *field, const char *name)
{
    json_t *list = json_object_get(doc, key);
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e) {
        const char *n = json_string_value(json_object_get(e, "name"));
        if (n && strcmp(n, name) == 0) {
            json_t *v = json_object_get(e, field);
            return json_is_object(v) ? v : NULL;
        }
    }
    return NULL;
}

/* A string field of obj: its value, NULL when absent; -1 and err when not a string. */
static int str_field(json_t *obj, const char *key, const char *where, const char **out,
                     lo_err_t *err)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v)) {
        lo_err_set(err, 0, "", "kubeconfig: %s.%s must be a string", where, key);
        return -1;
    }
    *out = json_string_value(v);
    if (**out == '\0')
        *out = NULL;
    return 0;
}

/* path made absolute against dir. New string. */
static char *resolve_path(const char *dir, const char *path)
{
    if (path[0] == '/')
        return lo_strdup(path);
    return lo_sprintf("%s/%s", dir, path);
}

/*
 * One credential that may be given as base64 data (key-data) or a file
 * (key): data wins. *blob and/or *file filled; -1 and err on bad base64 or
 * a missing file.
 */
static int data_or_file(json_t *obj, const char *where, const char *key, const char *dir,
                        kube_blob_t *blob, char **file, lo_err_t *err)
{
    char data_key[64];
    snprintf(data_key, sizeof(data_key), "%s-data", key);
    const char *data, *path;
    if (str_field(obj, data_key, where, &data, err) < 0 ||
        str_field(obj, key, where, &path, err) < 0)
        return -1;
    if (data) {
        blob->data = lo_base64_decode(data, &blob->len);
        if (blob->data == NULL || blob->len == 0) {
            lo_err_set(err, 0, "", "kubeconfig: %s.%s is not valid base64", where, data_key);
            return -1;
        }
        return 0;
    }
    if (path) {
        *file = resolve_path(dir, path);
        char what[96];
        snprintf(what, sizeof(what), "kubeconfig: %s.%s", where, key);
        return file_exists(*file, what, err);
    }
    return 0;
}

static int load_cluster(kube_config_t *c, json_t *cluster, const char *dir, lo_err_t *err)
{
    const char *server;
    if (str_field(cluster, "server", "cluster", &server, err) < 0)
        return -1;
    if (server == NULL) {
        lo_err_set(err, 0, "", "kubeconfig: cluster.server is missing");
        return -1;
    }
    if (strncmp(server, "https://", 8) != 0) {
        lo_err_set(err, 0, "", "kubeconfig: cluster.server %s is not an https:// URL", server);
        return -1;
    }
    if (json_is_true(json_object_get(cluster, "insecure-skip-tls-verify"))) {
        lo_err_set(err, 0, "", "kubeconfig: insecure-skip-tls-verify is not supported: "
                   "give certificate-authority or certificate-authority-data");
        return -1;
    }
    c->server = lo_strdup(server);
    size_t n = strlen(c->server);
    while (n > 8 && c->server[n - 1] == '/')
        c->server[--n] = '\0';
    return data_or_file(cluster, "cluster", "certificate-authority", dir, &c->ca, &c->ca_file,
                        err);
}

static int load_user(kube_config_t *c, json_t *user, const char *dir, lo_err_t *err)
{
    if (data_or_file(user, "user", "client-certificate", dir, &c->cert, &c->cert_file, err) < 0 ||
        data_or_file(user, "user", "client-key", dir, &c->key, &c->key_file, err) < 0)
        return -1;
    int has_cert = c->cert.data || c->cert_file, has_key = c->key.data || c->key_file;
    if (has_cert != has_key) {
        lo_err_set(err, 0, "", "kubeconfig: user has a client %s but no client %s",
                   has_cert ? "certificate" : "key", has_cert ? "key" : "certificate");
        return -1;
    }
    const char *token, *token_file;
    if (str_field(user, "token", "user", &token, err) < 0 ||
        str_field(user, "tokenFile", "user", &token_file, err) < 0)
        return -1;
    if (token)
        c->token = lo_strdup(token);
    else if (token_file) {
        c->token_file = resolve_path(dir, token_file);
        if (file_exists(c->token_file, "kubeconfig: user.tokenFile", err) < 0)
            return -1;
    }
    return 0;
}

/* The folder of path, absolute. New string. */
static char *folder_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? lo_strndup(path, slash == path ? 1 : (size_t)(slash - path))
                      : lo_strdup(".");
    if (dir[0] == '/')
        return dir;
    char cwd[4096];
    if (getcwd(cwd, sizeof(cwd)) == NULL)
        return dir;
    char *abs = lo_sprintf("%s/%s", cwd, dir);
    free(dir);
    return abs;
}

static kube_config_t *load_doc(json_t *doc, const char *dir, const char *context, lo_err_t *err)
{
    if (!json_is_object(doc)) {
        lo_err_set(err, 0, "", "kubeconfig: not a mapping");
        return NULL;
    }
    if (context == NULL)
        context = json_string_value(json_object_get(doc, "current-context"));
    if (context == NULL || *context == '\0') {
        lo_err_set(err, 0, "", "kubeconfig: no current-context");
        return NULL;
    }
    json_t *ctx = named_entry(doc, "contexts", "context", context);
    if (ctx == NULL) {
        lo_err_set(err, 0, "", "kubeconfig: no context named %s", context);
        return NULL;
    }
    const char *cluster_name = json_string_value(json_object_get(ctx, "cluster"));
    const char *user_name = json_string_value(json_object_get(ctx, "user"));
    json_t *cluster = cluster_name ? named_entry(doc, "clusters", "cluster", cluster_name) : NULL;
    if (cluster == NULL) {
        lo_err_set(err, 0, "", "kubeconfig: context %s: no cluster named %s", context,
                   cluster_name ? cluster_name : "(missing)");
        return NULL;
    }
    json_t *user = user_name ? named_entry(doc, "users", "user", user_name) : NULL;
    if (user_name && user == NULL) {
        lo_err_set(err, 0, "", "kubeconfig: context %s: no user named %s", context, user_name);
        return NULL;
    }
    kube_config_t *c = config_new();
    if (load_cluster(c, cluster, dir, err) < 0 || (user && load_user(c, user, dir, err) < 0)) {
        kubeconfig_free(c);
        return NULL;
    }
    return c;
}

kube_config_t *kubeconfig_load_file(const char *path, const char *context, lo_err_t *err)
{
    size_t len;
    char *text = read_file(path, KUBECONFIG_MAX_BYTES, &len);
    if (text == NULL) {
        lo_err_set(err, 0, "", "kubeconfig %s: %s", path, strerror(errno));
        return NULL;
    }
    lo_err_t perr = {0};
    json_t *doc = codec_decode_auto(text, len, &perr);
    free(text);
    if (doc == NULL) {
        lo_err_set(err, 0, "", "kubeconfig %s: %s", path, perr.message);
        lo_err_clear(&perr);
        return NULL;
    }
    char *dir = folder_of(path);
    kube_config_t *c = load_doc(doc, dir, context, err);
    free(dir);
    json_decref(doc);
    return c;
}

/* ---- the token ---- */

char *kubeconfig_token(kube_config_t *c, lo_err_t *err)
{
    if (c->token)
        return lo_strdup(c->token);
    if (c->token_file == NULL)
        return NULL;
    pthread_mutex_lock(&c->lock);
    struct stat st;
    char *out = NULL;
    if (stat(c->token_file, &st) < 0) {
        if (c->token_cached)
            out = lo_strdup(c->token_cached);
        else
            lo_err_set(err, 0, "", "token file %s: %s", c->token_file, strerror(errno));
        pthread_mutex_unlock(&c->lock);
        return out;
    }
    int same = c->token_cached && st.st_ino == c->token_ino && st.st_size == c->token_size &&
               st.st_mtim.tv_sec == c->token_mtime.tv_sec &&
               st.st_mtim.tv_nsec == c->token_mtime.tv_nsec;
    if (!same) {
        char *text = read_file(c->token_file, TOKEN_MAX_BYTES, NULL);
        if (text) {
            free(c->token_cached);
            c->token_cached = trimmed(text);
            free(text);
            c->token_ino = st.st_ino;
            c->token_size = st.st_size;
            c->token_mtime = st.st_mtim;
        } else if (c->token_cached == NULL) {
            lo_err_set(err, 0, "", "token file %s: %s", c->token_file, strerror(errno));
        }
    }
    if (c->token_cached)
        out = lo_strdup(c->token_cached);
    pthread_mutex_unlock(&c->lock);
    return out;
}
