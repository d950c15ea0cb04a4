/*
 * main.c - langop-apiserver: flags, start-up order, shutdown.
 *
 * Start-up order matters: the schema registry and jansson's hash seed are
 * set before any thread starts (both are then read-only), the store is
 * opened before the listener, every stored object's derived status is
 * brought up to date before serving, and the server reports ready only once
 * it accepts connections. Shutdown runs it backwards: the store (whose
 * writer runs the api's commit rules) closes before the api is freed.
 */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "langop/api/api.h"
#include "langop/http/server.h"
#include "langop/http/tls.h"
#include "langop/kube/kubeconfig.h"
#include "langop/kube/kubeclient.h"
#include "langop/request/auth.h"
#include "langop/request/authconfig.h"
#include "langop/request/authz.h"
#include "langop/reconcile/reconciler.h"
#include "langop/schema/schema.h"
#include "langop/storage/compactor.h"
#include "langop/storage/store.h"

typedef struct flags {
    const char *bind_address;
    int secure_port;
    const char *cert_file;
    const char *key_file;
    const char *cert_dir;
    int tls_min_version;
    const char *tls_cipher_suites;
    const char *storage_path;
    int storage_fsync;
    int max_queued_writes;
    const char *token_auth_file;
    int workers;
    int64_t compaction_interval_s;
    int64_t history_min_revisions;
    int64_t history_min_age_s;
    const char *cluster_domain;
    int64_t bookmark_interval_s;
    int64_t shutdown_grace_s;
    const char *authorization_mode;
    const char *authorization_kubeconfig;
    int64_t authz_allowed_ttl_s;
    int64_t authz_denied_ttl_s;
    /* authentication (auth.h); the list flags may repeat and hold commas: joined with commas (owned) */
    const char *client_ca_file;
    const char *requestheader_ca_file;
    char *requestheader_allowed_names;
    char *requestheader_username_headers;
    char *requestheader_group_headers;
    char *requestheader_extra_prefixes;
    char *requestheader_uid_headers;
    const char *authentication_kubeconfig;
    int64_t token_cache_ttl_s;
    char *api_audiences;
    int anonymous_auth;
    int tolerate_lookup_failure;
    const char *kubeconfig;
    const char *reconcile;
    const char *gateway_image;
    int reconcile_workers;
    int64_t reconcile_resync_s;
    int64_t authn_refresh_s;
    int max_requests_inflight;
    int max_mutating_requests_inflight;
    int max_watches;
} flags_t;

static void usage(FILE *out)
{
    fprintf(out,
            "langop-apiserver serves the langop.io/v1alpha1 API (LanguageCluster, LanguageModel,\n"
            "LanguageAgent, LanguageTool, LanguagePersona) over HTTPS, stored in SQLite.\n"
            "\n"
            "Usage: langop-apiserver [flags]\n"
            "\n"
            "Secure serving flags:\n"
            "      --bind-address ip            The IP address on which to listen (default 0.0.0.0)\n"
            "      --secure-port int            The port on which to serve HTTPS (default 6443)\n"
            "      --tls-cert-file string       File containing the x509 serving certificate (chain), PEM\n"
            "      --tls-private-key-file string  File containing the x509 private key matching --tls-cert-file\n"
            "      --cert-dir string            Where a self-signed certificate is generated when --tls-cert-file\n"
            "                                   and --tls-private-key-file are not given\n"
            "                                   (default apiserver.local.config/certificates)\n"
            "                                   The pair is reloaded when its files change (checked every 2 s)\n"
            "      --tls-min-version string     Minimum TLS version: VersionTLS12 or VersionTLS13\n"
            "                                   (default VersionTLS12)\n"
            "      --tls-cipher-suites strings  Comma-separated IANA cipher suite names, e.g.\n"
            "                                   TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 (default: ECDHE with\n"
            "                                   AES-GCM or CHACHA20-POLY1305 for TLS 1.2, OpenSSL's for TLS 1.3)\n"
            "\n"
            "Storage flags:\n"
            "      --storage-path string        SQLite database file (default langop.db)\n"
            "      --storage-fsync              Sync every commit to disk, to survive power loss; without it a\n"
            "                                   commit survives a crash of the process (default false)\n"
            "      --max-queued-writes int      Writes waiting for the store at most; beyond, a write is answered\n"
            "                                   429 with Retry-After (default 4096)\n"
            "      --compaction-interval duration  How often the event log is compacted; 0 never (default 1m)\n"
            "      --history-min-revisions int  Compaction keeps at least this many revisions (default 1000)\n"
            "      --history-min-age duration   Compaction keeps at least this much history (default 5m)\n"
            "      --watch-bookmark-interval duration  How often an idle watch that allows bookmarks gets one\n"
            "                                   (default 1m)\n"
            "\n"
            "Limits (the HTTP edge: README \"HTTP edge\"):\n"
            "      --max-requests-inflight int  Read-only requests (get, list) being served at most; beyond, 429\n"
            "                                   with Retry-After: 1. Watches are not counted, system:masters is\n"
            "                                   never refused. 0: no limit (default 400)\n"
            "      --max-mutating-requests-inflight int  The same for the other requests (create, update,\n"
            "                                   patch, delete ...) (default 200)\n"
            "      --max-watches int            Open watches at most, over all clients; beyond, a watch is\n"
            "                                   answered 429 with Retry-After: 1. Each may hold up to 8 MiB for a\n"
            "                                   slow reader before it is dropped. 0: no limit (default 1000)\n"
            "\n"
            "Derived config flags:\n"
            "      --cluster-domain string      The cluster's DNS domain, in derived endpoints such as\n"
            "                                   http://gateway.<ns>.svc.<domain>:8000 (default cluster.local)\n"
            "\n"
            "Authentication flags:\n"
            "      --token-auth-file string     Static bearer tokens, CSV: token,user,uid,\"group1,group2\"\n"
            "      --client-ca-file string      Accept client certificates signed by this CA: CN is the user,\n"
            "                                   O the groups\n"
            "      --requestheader-client-ca-file string  The front proxy's CA: a client certificate it signed\n"
            "                                   may assert the user in the headers below\n"
            "      --requestheader-allowed-names strings  Common names a front-proxy certificate may have\n"
            "                                   (default: any the CA signed)\n"
            "      --requestheader-username-headers strings  (default X-Remote-User)\n"
            "      --requestheader-group-headers strings  (default X-Remote-Group)\n"
            "      --requestheader-extra-headers-prefix strings  (default X-Remote-Extra-)\n"
            "      --requestheader-uid-headers strings  (default X-Remote-Uid)\n"
            "      --authentication-kubeconfig string  kube-apiserver to send TokenReviews to; without it, the\n"
            "                                   pod's service account when KUBERNETES_SERVICE_HOST is set\n"
            "      --authentication-token-webhook-cache-ttl duration  How long a TokenReview answer is\n"
            "                                   cached (default 10s)\n"
            "      --api-audiences strings      Audiences asked for in TokenReviews (default: the apiserver's)\n"
            "      --authentication-config-refresh-interval duration  How often the cluster's\n"
            "                                   extension-apiserver-authentication ConfigMap is read again\n"
            "                                   (rotated CAs); 0 never (default 1m)\n"
            "      --anonymous-auth             Requests with no credentials are system:anonymous instead of\n"
            "                                   401 (default false)\n"
            "      --authentication-tolerate-lookup-failure  Start even when the cluster's\n"
            "                                   extension-apiserver-authentication ConfigMap cannot be read\n"
            "                                   (default false: exit, as kube's servers do; a missing one is\n"
            "                                   never an error)\n"
            "\n"
            "Authorization flags:\n"
            "      --authorization-mode string  AlwaysAllow (every authenticated request; default) or Webhook\n"
            "                                   (a SubjectAccessReview to kube-apiserver per request, cached)\n"
            "      --authorization-kubeconfig string  kubeconfig of the kube-apiserver that Webhook asks\n"
            "                                   (default: in-cluster, the pod's service account)\n"
            "      --authorization-webhook-cache-authorized-ttl duration  How long an allow is cached (default 10s)\n"
            "      --authorization-webhook-cache-unauthorized-ttl duration  How long a deny is cached (default 10s)\n"
            "\n"
            "Reconcile flags (the cluster runs what the API says: reconciler.h):\n"
            "      --reconcile string           auto (default: on when a cluster is configured: --kubeconfig,\n"
            "                                   or in a pod), on, or off\n"
            "      --kubeconfig string          kubeconfig of the cluster to reconcile (default: in-cluster)\n"
            "      --gateway-image string       LiteLLM proxy image of the gateways (default: a pinned release;\n"
            "                                   a LanguageCluster's spec.gateway.image wins)\n"
            "      --reconcile-workers int      Clusters reconciled at once (default 2)\n"
            "      --reconcile-resync-period duration  How often every cluster is reconciled again, changed\n"
            "                                   or not, to repair drift (default 10m)\n"
            "\n"
            "Other flags:\n"
            "      --workers int                Worker threads preparing requests (default: one per CPU, at least 2)\n"
            "      --shutdown-grace-period duration  How long a stopping server waits to answer the requests it\n"
            "                                   has accepted (default 5s); writes queued after it still commit\n"
            "  -v, --v int                      Log verbosity (default 0: one line per request)\n"
            "  -h, --help                       Show this help\n");
}

/* "90", "90s", "5m", "1h" -> seconds */
static int parse_duration(const char *name, const char *value, int64_t *out)
{
    char *end;
    long long v = strtoll(value, &end, 10);
    long long unit = 1;
    if (*end == 's')
        end++;
    else if (*end == 'm')
        unit = 60, end++;
    else if (*end == 'h')
        unit = 3600, end++;
    if (*value == '\0' || *end != '\0' || v < 0 || v > 100LL * 365 * 24 * 3600 / unit) {
        fprintf(stderr, "invalid value \"%s\" for --%s: a duration such as 30s, 5m or 1h\n", value, name);
        return -1;
    }
    *out = v * unit;
    return 0;
}

static int parse_int64(const char *name, const char *value, int64_t *out)
{
    char *end;
    long long v = strtoll(value, &end, 10);
    if (*value == '\0' || *end != '\0' || v < 0) {
        fprintf(stderr, "invalid value \"%s\" for --%s: must be a non-negative integer\n", value, name);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_int(const char *name, const char *value, int min, int max, int *out)
{
    char *end;
    long v = strtol(value, &end, 10);
    if (*value == '\0' || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "invalid value \"%s\" for --%s: must be an integer in [%d, %d]\n", value, name, min, max);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_tls_min_version(const char *value, int *out)
{
    lo_err_t err = {0};
    if (tls_parse_min_version(value, out, &err) == 0)
        return 0;
    fprintf(stderr, "%s\n", err.message);
    return -1;
}

/* a name OpenSSL does not know stops the server before it opens anything */
static int check_cipher_suites(const char *value)
{
    lo_err_t err = {0};
    char *tls12 = NULL, *tls13 = NULL;
    int rc = tls_translate_cipher_suites(value, &tls12, &tls13, &err);
    if (rc == 0 && tls12[0] == '\0' && tls13[0] == '\0') {
        lo_err_set(&err, 0, "", "--tls-cipher-suites names no cipher suite");
        rc = -1;
    }
    if (rc != 0)
        fprintf(stderr, "%s\n", err.message);
    free(tls12);
    free(tls13);
    return rc;
}

enum {
    OPT_BIND = 256, OPT_PORT, OPT_CERT, OPT_KEY, OPT_CERT_DIR, OPT_STORAGE, OPT_FSYNC, OPT_TOKENS, OPT_WORKERS,
    OPT_COMPACTION, OPT_MIN_REVISIONS, OPT_MIN_AGE, OPT_CLUSTER_DOMAIN, OPT_BOOKMARKS, OPT_QUEUED_WRITES,
    OPT_SHUTDOWN_GRACE, OPT_TLS_MIN_VERSION, OPT_TLS_CIPHERS, OPT_AUTHZ_MODE, OPT_AUTHZ_KUBECONFIG,
    OPT_AUTHZ_ALLOWED_TTL, OPT_AUTHZ_DENIED_TTL, OPT_CLIENT_CA, OPT_RH_CA, OPT_RH_NAMES, OPT_RH_USER,
    OPT_RH_GROUP, OPT_RH_EXTRA, OPT_RH_UID, OPT_AUTHN_KUBECONFIG, OPT_AUTHN_TTL, OPT_AUDIENCES, OPT_ANONYMOUS, OPT_TOLERATE_LOOKUP, OPT_KUBECONFIG, OPT_RECONCILE,
    OPT_GATEWAY_IMAGE, OPT_RECONCILE_WORKERS, OPT_RECONCILE_RESYNC,
    OPT_AUTHN_REFRESH, OPT_MAX_INFLIGHT, OPT_MAX_MUTATING_INFLIGHT, OPT_MAX_WATCHES,
};

/* A list flag given again adds to the list (kube's string slices). */
static void list_append(char **list, const char *value)
{
    char *joined = *list ? lo_sprintf("%s,%s", *list, value) : lo_strdup(value);
    free(*list);
    *list = joined;
}

static int parse_flags(int argc, char **argv, flags_t *f)
{
    static const struct option options[] = {
        {"bind-address", required_argument, NULL, OPT_BIND},
        {"secure-port", required_argument, NULL, OPT_PORT},
        {"tls-cert-file", required_argument, NULL, OPT_CERT},
        {"tls-private-key-file", required_argument, NULL, OPT_KEY},
        {"cert-dir", required_argument, NULL, OPT_CERT_DIR},
        {"tls-min-version", required_argument, NULL, OPT_TLS_MIN_VERSION},
        {"tls-cipher-suites", required_argument, NULL, OPT_TLS_CIPHERS},
        {"storage-path", required_argument, NULL, OPT_STORAGE},
        {"storage-fsync", no_argument, NULL, OPT_FSYNC},
        {"max-queued-writes", required_argument, NULL, OPT_QUEUED_WRITES},
        {"token-auth-file", required_argument, NULL, OPT_TOKENS},
        {"workers", required_argument, NULL, OPT_WORKERS},
        {"shutdown-grace-period", required_argument, NULL, OPT_SHUTDOWN_GRACE},
        {"compaction-interval", required_argument, NULL, OPT_COMPACTION},
        {"history-min-revisions", required_argument, NULL, OPT_MIN_REVISIONS},
        {"history-min-age", required_argument, NULL, OPT_MIN_AGE},
        {"cluster-domain", required_argument, NULL, OPT_CLUSTER_DOMAIN},
        {"watch-bookmark-interval", required_argument, NULL, OPT_BOOKMARKS},
        {"authorization-mode", required_argument, NULL, OPT_AUTHZ_MODE},
        {"authorization-kubeconfig", required_argument, NULL, OPT_AUTHZ_KUBECONFIG},
        {"authorization-webhook-cache-authorized-ttl", required_argument, NULL, OPT_AUTHZ_ALLOWED_TTL},
        {"authorization-webhook-cache-unauthorized-ttl", required_argument, NULL, OPT_AUTHZ_DENIED_TTL},
        {"client-ca-file", required_argument, NULL, OPT_CLIENT_CA},
        {"requestheader-client-ca-file", required_argument, NULL, OPT_RH_CA},
        {"requestheader-allowed-names", required_argument, NULL, OPT_RH_NAMES},
        {"requestheader-username-headers", required_argument, NULL, OPT_RH_USER},
        {"requestheader-group-headers", required_argument, NULL, OPT_RH_GROUP},
        {"requestheader-extra-headers-prefix", required_argument, NULL, OPT_RH_EXTRA},
        {"requestheader-uid-headers", required_argument, NULL, OPT_RH_UID},
        {"authentication-kubeconfig", required_argument, NULL, OPT_AUTHN_KUBECONFIG},
        {"authentication-token-webhook-cache-ttl", required_argument, NULL, OPT_AUTHN_TTL},
        {"api-audiences", required_argument, NULL, OPT_AUDIENCES},
        {"anonymous-auth", no_argument, NULL, OPT_ANONYMOUS},
        {"authentication-tolerate-lookup-failure", no_argument, NULL, OPT_TOLERATE_LOOKUP},
        {"kubeconfig", required_argument, NULL, OPT_KUBECONFIG},
        {"reconcile", required_argument, NULL, OPT_RECONCILE},
        {"gateway-image", required_argument, NULL, OPT_GATEWAY_IMAGE},
        {"reconcile-workers", required_argument, NULL, OPT_RECONCILE_WORKERS},
        {"reconcile-resync-period", required_argument, NULL, OPT_RECONCILE_RESYNC},
        {"authentication-config-refresh-interval", required_argument, NULL, OPT_AUTHN_REFRESH},
        {"max-requests-inflight", required_argument, NULL, OPT_MAX_INFLIGHT},
        {"max-mutating-requests-inflight", required_argument, NULL, OPT_MAX_MUTATING_INFLIGHT},
        {"max-watches", required_argument, NULL, OPT_MAX_WATCHES},
        {"v", required_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "v:h", options, NULL)) != -1) {
        int rc = 0;
        switch (c) {
        case OPT_BIND: f->bind_address = optarg; break;
        case OPT_PORT: rc = parse_int("secure-port", optarg, 1, 65535, &f->secure_port); break;
        case OPT_CERT: f->cert_file = optarg; break;
        case OPT_KEY: f->key_file = optarg; break;
        case OPT_CERT_DIR: f->cert_dir = optarg; break;
        case OPT_TLS_MIN_VERSION: rc = parse_tls_min_version(optarg, &f->tls_min_version); break;
        case OPT_TLS_CIPHERS: rc = check_cipher_suites(optarg); f->tls_cipher_suites = optarg; break;
        case OPT_STORAGE: f->storage_path = optarg; break;
        case OPT_FSYNC: f->storage_fsync = 1; break;
        case OPT_QUEUED_WRITES:
            rc = parse_int("max-queued-writes", optarg, 1, 1 << 20, &f->max_queued_writes);
            break;
        case OPT_TOKENS: f->token_auth_file = optarg; break;
        case OPT_WORKERS: rc = parse_int("workers", optarg, 1, 256, &f->workers); break;
        case OPT_COMPACTION: rc = parse_duration("compaction-interval", optarg, &f->compaction_interval_s); break;
        case OPT_MIN_REVISIONS: rc = parse_int64("history-min-revisions", optarg, &f->history_min_revisions); break;
        case OPT_MIN_AGE: rc = parse_duration("history-min-age", optarg, &f->history_min_age_s); break;
        case OPT_CLUSTER_DOMAIN: f->cluster_domain = optarg; break;
        case OPT_BOOKMARKS: rc = parse_duration("watch-bookmark-interval", optarg, &f->bookmark_interval_s); break;
        case OPT_SHUTDOWN_GRACE: rc = parse_duration("shutdown-grace-period", optarg, &f->shutdown_grace_s); break;
        case OPT_AUTHZ_MODE: f->authorization_mode = optarg; break;
        case OPT_AUTHZ_KUBECONFIG: f->authorization_kubeconfig = optarg; break;
        case OPT_AUTHZ_ALLOWED_TTL:
            rc = parse_duration("authorization-webhook-cache-authorized-ttl", optarg, &f->authz_allowed_ttl_s);
            break;
        case OPT_AUTHZ_DENIED_TTL:
            rc = parse_duration("authorization-webhook-cache-unauthorized-ttl", optarg, &f->authz_denied_ttl_s);
            break;
        case OPT_CLIENT_CA: f->client_ca_file = optarg; break;
        case OPT_RH_CA: f->requestheader_ca_file = optarg; break;
        case OPT_RH_NAMES: list_append(&f->requestheader_allowed_names, optarg); break;
        case OPT_RH_USER: list_append(&f->requestheader_username_headers, optarg); break;
        case OPT_RH_GROUP: list_append(&f->requestheader_group_headers, optarg); break;
        case OPT_RH_EXTRA: list_append(&f->requestheader_extra_prefixes, optarg); break;
        case OPT_RH_UID: list_append(&f->requestheader_uid_headers, optarg); break;
        case OPT_AUTHN_KUBECONFIG: f->authentication_kubeconfig = optarg; break;
        case OPT_AUTHN_TTL:
            rc = parse_duration("authentication-token-webhook-cache-ttl", optarg, &f->token_cache_ttl_s);
            break;
        case OPT_AUDIENCES: list_append(&f->api_audiences, optarg); break;
        case OPT_ANONYMOUS: f->anonymous_auth = 1; break;
        case OPT_TOLERATE_LOOKUP: f->tolerate_lookup_failure = 1; break;
        case OPT_KUBECONFIG: f->kubeconfig = optarg; break;
        case OPT_RECONCILE: f->reconcile = optarg; break;
        case OPT_GATEWAY_IMAGE: f->gateway_image = optarg; break;
        case OPT_RECONCILE_WORKERS: f->reconcile_workers = atoi(optarg); break;
        case OPT_RECONCILE_RESYNC:
            rc = parse_duration("reconcile-resync-period", optarg, &f->reconcile_resync_s);
            break;
        case OPT_AUTHN_REFRESH:
            rc = parse_duration("authentication-config-refresh-interval", optarg, &f->authn_refresh_s);
            break;
        case OPT_MAX_INFLIGHT:
            rc = parse_int("max-requests-inflight", optarg, 0, 1 << 20, &f->max_requests_inflight);
            break;
        case OPT_MAX_MUTATING_INFLIGHT:
            rc = parse_int("max-mutating-requests-inflight", optarg, 0, 1 << 20, &f->max_mutating_requests_inflight);
            break;
        case OPT_MAX_WATCHES: rc = parse_int("max-watches", optarg, 0, 1 << 20, &f->max_watches); break;
        case 'v': rc = parse_int("v", optarg[0] == '=' ? optarg + 1 : optarg, 0, 10, &lo_verbosity); break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
        if (rc != 0)
            return -1;
    }
    if (optind < argc) {
        fprintf(stderr, "unexpected argument: %s\n", argv[optind]);
        return -1;
    }
    if ((f->cert_file == NULL) != (f->key_file == NULL)) {
        fprintf(stderr, "--tls-cert-file and --tls-private-key-file must be given together\n");
        return -1;
    }
    authz_mode_t mode;
    if (authz_mode_parse(f->authorization_mode, &mode) != 0) {
        fprintf(stderr, "invalid value \"%s\" for --authorization-mode: AlwaysAllow or Webhook\n",
                f->authorization_mode);
        return -1;
    }
    if (strcmp(f->reconcile, "auto") != 0 && strcmp(f->reconcile, "on") != 0 && strcmp(f->reconcile, "off") != 0) {
        fprintf(stderr, "invalid value \"%s\" for --reconcile: auto, on or off\n", f->reconcile);
        return -1;
    }
    if (f->reconcile_workers < 1 || f->reconcile_workers > 64) {
        fprintf(stderr, "--reconcile-workers must be between 1 and 64\n");
        return -1;
    }
    return 0;
}

/*
 * The reconcile thread, when --reconcile and the environment ask for it:
 * its cluster is --kubeconfig, else the pod's service account. NULL with
 * no error when it stays off; NULL with err when it was asked for and
 * cannot start.
 */
static reconciler_t *start_reconciler(const flags_t *f, api_t *api, kube_client_t **kube, lo_err_t *err)
{
    if (strcmp(f->reconcile, "off") == 0) {
        lo_log(LO_INFO, "%s", "Not reconciling the cluster (--reconcile=off)");
        return NULL;
    }
    kube_config_t *cfg;
    if (f->kubeconfig) {
        cfg = kubeconfig_load_file(f->kubeconfig, NULL, err);
    } else if (strcmp(f->reconcile, "auto") == 0) {
        lo_err_t why = {0};
        cfg = kubeconfig_in_cluster(NULL, &why);
        if (cfg == NULL)
            lo_log(LO_INFO, "Not reconciling the cluster (--reconcile=auto): %s", why.message);
        lo_err_clear(&why);
    } else {
        cfg = kubeconfig_in_cluster(NULL, err);
    }
    if (cfg == NULL)
        return NULL;
    kube_client_options_t ko = {.timeout_ms = 30000};
    if ((*kube = kube_client_new(cfg, &ko, err)) == NULL)
        return NULL;
    char host[256] = "";
    if (gethostname(host, sizeof(host) - 1) != 0) /* in a pod: the pod's name, as kube's components report */
        host[0] = '\0';
    reconciler_options_t ro = {.kube = *kube, .api = api, .cluster_domain = f->cluster_domain, .event_host = host,
                               .gateway_image = f->gateway_image, .workers = f->reconcile_workers,
                               .resync_ms = f->reconcile_resync_s * 1000};
    return reconciler_start(&ro, err);
}

/*
 * The authorizer the flags ask for. Webhook reaches kube-apiserver through
 * --authorization-kubeconfig, or in-cluster through the pod's service account.
 */
static authz_t *make_authz(const flags_t *f, lo_err_t *err)
{
    authz_options_t o = {.allowed_ttl_ms = f->authz_allowed_ttl_s * 1000,
                         .denied_ttl_ms = f->authz_denied_ttl_s * 1000};
    authz_mode_parse(f->authorization_mode, &o.mode); /* checked by parse_flags */
    if (o.mode == AUTHZ_ALWAYS_ALLOW) {
        lo_log(LO_INFO, "warning: --authorization-mode=AlwaysAllow: every authenticated user may do anything; "
                        "use Webhook behind kube-apiserver");
        return authz_new(&o, err);
    }
    kube_config_t *cfg = f->authorization_kubeconfig ? kubeconfig_load_file(f->authorization_kubeconfig, NULL, err)
                                                     : kubeconfig_in_cluster(NULL, err);
    if (cfg == NULL)
        return NULL;
    kube_client_options_t ko = {.timeout_ms = 10000};
    o.client = kube_client_new(cfg, &ko, err);
    if (o.client == NULL)
        return NULL;
    return authz_new(&o, err);
}

/*
 * Where TokenReviews go: --authentication-kubeconfig, else the pod's
 * service account when running in a pod (KUBERNETES_SERVICE_HOST set), else
 * nowhere (NULL, no error). A pod without a usable service account only
 * loses TokenReview, with a warning: the other authenticators still work.
 */
static kube_client_t *tokenreview_client(const flags_t *f, lo_err_t *err)
{
    kube_config_t *cfg;
    if (f->authentication_kubeconfig) {
        cfg = kubeconfig_load_file(f->authentication_kubeconfig, NULL, err);
        if (cfg == NULL)
            return NULL;
    } else if (getenv("KUBERNETES_SERVICE_HOST")) {
        lo_err_t why = {0};
        cfg = kubeconfig_in_cluster(NULL, &why);
        if (cfg == NULL) {
            lo_log(LO_INFO, "Warning: no TokenReview: in-cluster configuration: %s", why.message);
            lo_err_clear(&why);
            return NULL;
        }
    } else {
        return NULL;
    }
    /* a review holds a worker while it waits: answer fast or fail (401), and retry a failed
     * connection once, not with the client's default four backoffs */
    kube_client_options_t ko = {.connect_timeout_ms = 3000, .timeout_ms = 10000, .max_retries = 1};
    return kube_client_new(cfg, &ko, err);
}

/*
 * What the flags leave unsaid, from the cluster's ConfigMap (authconfig.h),
 * when a kube-apiserver is configured and neither CA was given as a flag.
 * As kube's delegating servers: a ConfigMap that does not exist means
 * nothing to add (a warning); one that cannot be read (RBAC, network) stops
 * the start with -1 and err, since the server would then answer every
 * aggregated request 401 while looking ready, unless
 * --authentication-tolerate-lookup-failure.
 */
static int cluster_authconfig(kube_client_t *kube, const flags_t *f, authconfig_t *cm, lo_err_t *err)
{
    memset(cm, 0, sizeof(*cm));
    if (kube == NULL || f->client_ca_file || f->requestheader_ca_file)
        return 0;
    lo_err_t why = {0};
    int rc = 0;
    if (authconfig_read(kube, cm, &why) != 0) {
        if (why.code == 404 || f->tolerate_lookup_failure) {
            lo_log(LO_INFO, "Warning: cannot read %s: %s; no front proxy or client certificates", AUTHCONFIG_PATH,
                   why.message);
        } else {
            lo_err_set(err, why.code, why.reason, "cannot read %s: %s (--authentication-tolerate-lookup-failure "
                       "starts anyway)", AUTHCONFIG_PATH, why.message);
            rc = -1;
        }
    }
    lo_err_clear(&why);
    return rc;
}

/* The CA and front-proxy fields of o: a flag wins over the ConfigMap (cm, borrowed by o). */
static void trust_options(const flags_t *f, const authconfig_t *cm, auth_options_t *o)
{
#define FLAG_OR_CLUSTER(name) (f->name ? f->name : cm->name)
    o->client_ca_file = f->client_ca_file;
    o->requestheader_ca_file = f->requestheader_ca_file;
    o->client_ca_pem = cm->client_ca_pem;
    o->requestheader_ca_pem = cm->requestheader_ca_pem;
    o->requestheader_allowed_names = FLAG_OR_CLUSTER(requestheader_allowed_names);
    o->requestheader_username_headers = FLAG_OR_CLUSTER(requestheader_username_headers);
    o->requestheader_group_headers = FLAG_OR_CLUSTER(requestheader_group_headers);
    o->requestheader_extra_prefixes = FLAG_OR_CLUSTER(requestheader_extra_prefixes);
    o->requestheader_uid_headers = FLAG_OR_CLUSTER(requestheader_uid_headers);
#undef FLAG_OR_CLUSTER
}

/*
 * Re-reads the cluster's authentication ConfigMap every interval, so that
 * rotated CAs are followed (kube's servers watch it; a poll is simpler and
 * rotation is slow). A read or a CA that fails keeps what was there.
 */
typedef struct trust_refresher {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stop;                  /* under lock */
    kube_client_t *kube;       /* borrowed from auth (its TokenReview client): stop before auth_free */
    const flags_t *flags;
    auth_t *auth;
    int64_t interval_ms;
} trust_refresher_t;

static int refresher_wait(trust_refresher_t *r)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += r->interval_ms / 1000;
    until.tv_nsec += (r->interval_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L)
        until.tv_sec++, until.tv_nsec -= 1000000000L;
    pthread_mutex_lock(&r->lock);
    while (!r->stop && pthread_cond_timedwait(&r->cond, &r->lock, &until) == 0)
        ;
    int stop = r->stop;
    pthread_mutex_unlock(&r->lock);
    return !stop;
}

static void *refresher_main(void *arg)
{
    trust_refresher_t *r = arg;
    while (refresher_wait(r)) {
        authconfig_t cm;
        lo_err_t err = {0};
        if (authconfig_read(r->kube, &cm, &err) == 0) {
            auth_options_t o = {0};
            trust_options(r->flags, &cm, &o);
            if (auth_reload_trust(r->auth, &o, &err) != 0)
                lo_log(LO_INFO, "Warning: %s: %s; keeping the previous CAs", AUTHCONFIG_PATH, err.message);
        } else {
            lo_log(LO_INFO, "Warning: cannot re-read %s: %s", AUTHCONFIG_PATH, err.message);
        }
        authconfig_free(&cm);
        lo_err_clear(&err);
    }
    return NULL;
}

/* Whether the CAs come from the cluster's ConfigMap and are re-read. */
static int trust_follows_cluster(const kube_client_t *kube, const flags_t *f)
{
    return kube != NULL && !f->client_ca_file && !f->requestheader_ca_file && f->authn_refresh_s != 0;
}

/* Starts the refresher when the trust comes from the ConfigMap; NULL when it does not. */
static trust_refresher_t *refresher_start(kube_client_t *kube, const flags_t *f, auth_t *auth)
{
    if (!trust_follows_cluster(kube, f))
        return NULL;
    trust_refresher_t *r = lo_calloc(1, sizeof(*r));
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    r->kube = kube, r->flags = f, r->auth = auth, r->interval_ms = f->authn_refresh_s * 1000;
    pthread_create(&r->thread, NULL, refresher_main, r);
    return r;
}

static void refresher_stop(trust_refresher_t *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->lock);
    r->stop = 1;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL); /* a read in flight ends within the kube client's timeouts */
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
    free(r);
}

int main(int argc, char **argv)
{
    flags_t f = {.bind_address = "0.0.0.0", .secure_port = 6443, .cert_dir = "apiserver.local.config/certificates",
                 .storage_path = "langop.db", .workers = 0, .compaction_interval_s = 60,
                 .history_min_revisions = 1000, .history_min_age_s = 300, .cluster_domain = "cluster.local",
                 .bookmark_interval_s = 60, .max_queued_writes = STORE_WRITE_QUEUE_MAX, .shutdown_grace_s = 5,
                 .authorization_mode = "AlwaysAllow", .authz_allowed_ttl_s = 10, .authz_denied_ttl_s = 10,
                 .token_cache_ttl_s = 10, .authn_refresh_s = 60, .reconcile = "auto", .reconcile_workers = 2,
                 .reconcile_resync_s = 600, .max_requests_inflight = 400, .max_mutating_requests_inflight = 200,
                 .max_watches = 1000};
    if (parse_flags(argc, argv, &f) != 0)
        return 2;
    setvbuf(stderr, NULL, _IOLBF, 0);
    json_object_seed(0);
    lo_log_start();

    int status = 1;
    lo_err_t err = {0};
    store_t *store = NULL;
    auth_t *auth = NULL;
    authz_t *authz = NULL;
    authconfig_t cm = {0};
    trust_refresher_t *refresher = NULL;
    api_t *api = NULL;
    kube_client_t *reconcile_kube = NULL;
    reconciler_t *reconciler = NULL;
    compactor_t *compactor = NULL;
    char *cert = NULL, *key = NULL;
    if (schema_registry_load(&err) != 0) {
        fprintf(stderr, "error: schema: %s\n", err.message);
        goto exit;
    }
    if (f.cert_file == NULL) {
        if (server_ensure_self_signed(f.cert_dir, &cert, &key, &err) != 0) {
            fprintf(stderr, "error: %s\n", err.message);
            goto exit;
        }
        f.cert_file = cert;
        f.key_file = key;
    }
    kube_client_t *reviews = tokenreview_client(&f, &err);
    if (reviews == NULL && err.message[0]) {
        fprintf(stderr, "error: --authentication-kubeconfig: %s\n", err.message);
        goto exit;
    }
    if (cluster_authconfig(reviews, &f, &cm, &err) != 0) {
        fprintf(stderr, "error: %s\n", err.message);
        kube_client_free(reviews);
        goto exit;
    }
    auth_options_t auo = {.token_file = f.token_auth_file, .tokenreview_client = reviews,
                          .api_audiences = f.api_audiences, .token_cache_ttl_ms = f.token_cache_ttl_s * 1000,
                          .anonymous = f.anonymous_auth, .trust_reloads = trust_follows_cluster(reviews, &f)};
    trust_options(&f, &cm, &auo);
    auth = auth_new(&auo, &err);
    authconfig_free(&cm);
    if (auth == NULL) {
        fprintf(stderr, "error: %s\n", err.message);
        goto exit;
    }
    authz = make_authz(&f, &err);
    if (authz == NULL) {
        fprintf(stderr, "error: authorization: %s\n", err.message);
        goto exit;
    }
    refresher = refresher_start(reviews, &f, auth);
    store_options_t so = {.path = f.storage_path, .sync_full = f.storage_fsync,
                          .queue_max = (size_t)f.max_queued_writes};
    store = store_open(&so, &err);
    if (store == NULL) {
        fprintf(stderr, "error: cannot open storage %s: %s\n", f.storage_path, err.message);
        goto exit;
    }
    compactor = compactor_start(store, f.compaction_interval_s * 1000, f.history_min_revisions, f.history_min_age_s);
    char address[300];
    snprintf(address, sizeof(address), "%s:%d", strcmp(f.bind_address, "0.0.0.0") == 0 ? "127.0.0.1" : f.bind_address,
             f.secure_port);
    api_options_t ao = {.server_address = address, .cluster_domain = f.cluster_domain, .authz = authz};
    api = api_new(store, &ao);
    if (api_refresh_derived(api, &err) != 0) {
        fprintf(stderr, "error: cannot derive the status of the stored objects: %s\n", err.message);
        goto exit;
    }
    reconciler = start_reconciler(&f, api, &reconcile_kube, &err);
    if (reconciler == NULL && err.message[0]) {
        fprintf(stderr, "error: reconcile: %s\n", err.message);
        goto exit;
    }
    server_options_t opts = {.bind_address = f.bind_address, .port = f.secure_port, .cert_file = f.cert_file,
                             .key_file = f.key_file, .tls_min_version = f.tls_min_version,
                             .tls_cipher_suites = f.tls_cipher_suites, .workers = f.workers,
                             .bookmark_interval_ms = f.bookmark_interval_s * 1000,
                             .shutdown_grace_ms = f.shutdown_grace_s * 1000,
                             .max_requests_inflight = f.max_requests_inflight,
                             .max_mutating_requests_inflight = f.max_mutating_requests_inflight,
                             .max_watches = f.max_watches};
    if (server_run(api, auth, &opts, &err) != 0) {
        fprintf(stderr, "error: %s\n", err.message);
        goto exit;
    }
    status = 0;
exit:
    reconciler_stop(reconciler); /* before the store: it reads and writes through the api */
    kube_client_free(reconcile_kube);
    refresher_stop(refresher); /* borrows auth's kube client */
    compactor_stop(compactor);
    /* the store's writer runs the api's commit rules until the last queued write: it stops first */
    store_close(store);
    api_free(api);
    authz_free(authz);
    auth_free(auth);
    schema_registry_free();
    free(cert);
    free(key);
    free(f.requestheader_allowed_names);
    free(f.requestheader_username_headers);
    free(f.requestheader_group_headers);
    free(f.requestheader_extra_prefixes);
    free(f.requestheader_uid_headers);
    free(f.api_audiences);
    authconfig_free(&cm);
    lo_err_clear(&err);
    lo_log_stop();
    return status;
}
