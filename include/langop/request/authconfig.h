/*
 * authconfig.h - the cluster's word on how to authenticate: the ConfigMap
 * kube-system/extension-apiserver-authentication, which kube-apiserver
 * writes for extension API servers (its client CA, and the front proxy's
 * CA, allowed names and header names).
 *
 * Read at start-up and then every --authentication-config-refresh-interval
 * (main.c, through the kube client; kube's servers watch it instead); flags
 * given on the command line win over what it says.
 */
#ifndef LANGOP_AUTHCONFIG_H
#define LANGOP_AUTHCONFIG_H

#include "langop/core/common.h"
#include "langop/kube/kubeclient.h"

#define AUTHCONFIG_PATH "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication"

/* Every field owned, NULL when the ConfigMap does not have it. Lists are comma-joined. */
typedef struct authconfig {
    char *client_ca_pem;
    char *requestheader_ca_pem;
    char *requestheader_allowed_names;
    char *requestheader_username_headers;
    char *requestheader_group_headers;
    char *requestheader_extra_prefixes;
    char *requestheader_uid_headers;
} authconfig_t;

/**
 * Reads the ConfigMap into cfg (zeroed first). The list keys hold JSON
 * arrays of strings; a key that is no such array is left out. Returns 0,
 * or -1 and err when it cannot be read.
 */
int authconfig_read(kube_client_t *kube, authconfig_t *cfg, lo_err_t *err);

/** Parses the data object of the ConfigMap (borrowed) into cfg (zeroed first). */
void authconfig_parse(const json_t *data, authconfig_t *cfg);

void authconfig_free(authconfig_t *cfg);

#endif
