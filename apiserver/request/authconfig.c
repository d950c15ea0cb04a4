/*
 * authconfig.c - kube-system/extension-apiserver-authentication (see
 * langop/request/authconfig.h).
 */
#include "langop/request/authconfig.h"

#include <stdlib.h>
#include <string.h>

/* A string that is itself a JSON array of strings, e.g. "[\"X-Remote-User\"]", comma-joined; NULL if not one. */
static char *json_list(const json_t *value)
{
    const char *text = json_string_value(value);
    json_t *list = text ? json_loads(text, 0, NULL) : NULL;
    char *joined = NULL;
    size_t i;
    json_t *v;
    if (json_is_array(list)) {
        joined = lo_strdup("");
        json_array_foreach(list, i, v) {
            if (!json_is_string(v) || strchr(json_string_value(v), ',')) /* a comma would split a name */
                continue;
            char *next = lo_sprintf("%s%s%s", joined, joined[0] ? "," : "", json_string_value(v));
            free(joined);
            joined = next;
        }
    }
    json_decref(list);
    return joined;
}

static char *string_of(const json_t *value)
{
    const char *s = json_string_value(value);
    return s && s[0] ? lo_strdup(s) : NULL;
}

void authconfig_parse(const json_t *data, authconfig_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->client_ca_pem = string_of(json_object_get(data, "client-ca-file"));
    cfg->requestheader_ca_pem = string_of(json_object_get(data, "requestheader-client-ca-file"));
    cfg->requestheader_allowed_names = json_list(json_object_get(data, "requestheader-allowed-names"));
    cfg->requestheader_username_headers = json_list(json_object_get(data, "requestheader-username-headers"));
    cfg->requestheader_group_headers = json_list(json_object_get(data, "requestheader-group-headers"));
    cfg->requestheader_extra_prefixes = json_list(json_object_get(data, "requestheader-extra-headers-prefix"));
    cfg->requestheader_uid_headers = json_list(json_object_get(data, "requestheader-uid-headers"));
}

int authconfig_read(kube_client_t *kube, authconfig_t *cfg, lo_err_t *err)
{
    memset(cfg, 0, sizeof(*cfg));
    json_t *cm = NULL;
    if (kube_get(kube, AUTHCONFIG_PATH, &cm, err) != KUBE_OK)
        return -1;
    authconfig_parse(json_object_get(cm, "data"), cfg);
    json_decref(cm);
    return 0;
}

void authconfig_free(authconfig_t *cfg)
{
    free(cfg->client_ca_pem);
    free(cfg->requestheader_ca_pem);
    free(cfg->requestheader_allowed_names);
    free(cfg->requestheader_username_headers);
    free(cfg->requestheader_group_headers);
    free(cfg->requestheader_extra_prefixes);
    free(cfg->requestheader_uid_headers);
    memset(cfg, 0, sizeof(*cfg));
}
