/*
 * kubeconfig.h - where kube-apiserver is and how to authenticate to it:
 * from the pod's service account (in-cluster) or from a kubeconfig file.
 *
 * A kube_config_t says: the server URL, the CA that signs the server's
 * certificate (PEM bytes or a file), an optional client certificate and
 * key (bytes or files), and an optional bearer token (a fixed string or a
 * file). TLS verification cannot be turned off: a kubeconfig that asks for
 * insecure-skip-tls-verify is refused.
 *
 * A token file (the service account's projected token, a kubeconfig
 * tokenFile) is rotated by the kubelet under a running process, so it is
 * not read once: kubeconfig_token() looks at the file on every call (one
 * stat) and reads it again when its inode, size or mtime changed.
 *
 * A kube_config_t is owned by whoever loaded it (or by the kube_client_t
 * it was given to) and freed with kubeconfig_free(). Its fields do not
 * change after loading, except the token cache, which has its own lock:
 * kubeconfig_token() may be called from any thread.
 */
#ifndef LANGOP_KUBE_KUBECONFIG_H
#define LANGOP_KUBE_KUBECONFIG_H

#include <stddef.h>
#include <pthread.h>
#include <sys/types.h>
#include <time.h>
#include "langop/core/common.h"

/* Bytes decoded from a *-data field; data NULL when absent. */
typedef struct kube_blob {
    unsigned char *data;
    size_t len;
} kube_blob_t;

typedef struct kube_config {
    char *server;           /* "https://host:port", no trailing '/' */
    kube_blob_t ca;         /* CA bundle (PEM) ... */
    char *ca_file;          /* ... or its absolute path; neither: the system CAs */
    kube_blob_t cert;       /* client certificate (PEM) ... */
    char *cert_file;        /* ... or its absolute path */
    kube_blob_t key;        /* client key (PEM) ... */
    char *key_file;         /* ... or its absolute path */
    char *token;            /* a fixed bearer token, or NULL */
    char *token_file;       /* a bearer token file (absolute), or NULL */

    /* token_file cache, under lock */
    pthread_mutex_t lock;
    char *token_cached;
    ino_t token_ino;
    off_t token_size;
    struct timespec token_mtime;
} kube_config_t;

/*
 * In-cluster paths; a NULL field takes the default. Tests point them at a
 * temporary folder; host and port NULL read KUBERNETES_SERVICE_HOST and
 * KUBERNETES_SERVICE_PORT from the environment.
 */
typedef struct kube_incluster {
    const char *token_file;  /* /var/run/secrets/kubernetes.io/serviceaccount/token */
    const char *ca_file;     /* /var/run/secrets/kubernetes.io/serviceaccount/ca.crt */
    const char *host;
    const char *port;
} kube_incluster_t;

#define KUBE_SA_TOKEN_FILE "/var/run/secrets/kubernetes.io/serviceaccount/token"
#define KUBE_SA_CA_FILE "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"

/**
 * The configuration of a pod: server https://$KUBERNETES_SERVICE_HOST:PORT
 * (an IPv6 host in brackets), CA and token files as in paths (may be NULL).
 * Both files must exist now. NULL and err (code 0) on failure.
 */
kube_config_t *kubeconfig_in_cluster(const kube_incluster_t *paths, lo_err_t *err);

/**
 * A kubeconfig file (YAML or JSON): the cluster and user of context
 * (NULL: current-context). Relative certificate-authority, client-
 * certificate, client-key and tokenFile paths are taken from the file's
 * folder. A *-data field wins over the file field of the same name, as
 * kubectl does. Base64 is decoded here; files are only checked to exist.
 * NULL and err (code 0, a message naming the field) on failure.
 */
kube_config_t *kubeconfig_load_file(const char *path, const char *context, lo_err_t *err);

/**
 * The bearer token to send now: a new string the caller frees, or NULL
 * when there is none (no token configured). A token file that cannot be
 * read gives NULL and err; a file that was read before and is now briefly
 * absent (mid-rotation) keeps the last token.
 */
char *kubeconfig_token(kube_config_t *cfg, lo_err_t *err);

/** Frees cfg and everything in it (NULL is a no-op). */
void kubeconfig_free(kube_config_t *cfg);

#endif
