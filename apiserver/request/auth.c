/*
 * auth.c - static token authentication (kube's --token-auth-file).
 *
 * The file is read once at startup; the table is immutable afterwards and
 * read from any thread.
 */
#include "langop/request/auth.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct auth_token {
    char *token;
    api_user_t user;
} auth_token_t;

struct auth {
    auth_token_t *tokens;
    size_t count;
};

#define CSV_MAX_FIELDS 4

/* Splits one CSV line into at most CSV_MAX_FIELDS fields (RFC 4180 quoting). Returns the field count. */
static size_t csv_split(const char *line, char *fields[CSV_MAX_FIELDS])
{
    size_t n = 0, len = strlen(line);
    size_t i = 0;
    while (n < CSV_MAX_FIELDS) {
        char *out = lo_malloc(len + 1);
        size_t o = 0;
        if (line[i] == '"') {
            i++;
            while (i < len) {
                if (line[i] == '"' && line[i + 1] == '"') {
                    out[o++] = '"';
                    i += 2;
                } else if (line[i] == '"') {
                    i++;
                    break;
                } else {
                    out[o++] = line[i++];
                }
            }
        }
        while (i < len && line[i] != ',')
            out[o++] = line[i++];
        out[o] = '\0';
        fields[n++] = out;
        if (i >= len)
            break;
        i++; /* skip ',' */
    }
    return n;
}

static void parse_groups(const char *text, api_user_t *user)
{
    size_t g = 0;
    const char *p = text;
    while (*p && g < API_MAX_GROUPS - 2) { /* leave room for system:authenticated and NULL */
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && *p == ' ')
            p++, len--;
        while (len && p[len - 1] == ' ')
            len--;
        if (len)
            user->groups[g++] = lo_strndup(p, len);
        if (!end)
            break;
        p = end + 1;
    }
    int listed = 0;
    for (size_t i = 0; i < g; i++)
        listed |= strcmp(user->groups[i], "system:authenticated") == 0;
    if (!listed) /* kube adds it only when it is missing */
        user->groups[g++] = lo_strdup("system:authenticated");
    user->groups[g] = NULL;
}

static int add_line(auth_t *auth, const char *line, size_t lineno, lo_err_t *err)
{
    char *f[CSV_MAX_FIELDS] = {0};
    size_t n = csv_split(line, f);
    int ret = -1;
    if (n < 2 || f[0][0] == '\0' || f[1][0] == '\0') {
        lo_err_set(err, 0, "", "token file line %zu: need at least token,user", lineno);
        goto exit;
    }
    auth->tokens = lo_realloc(auth->tokens, (auth->count + 1) * sizeof(*auth->tokens));
    auth_token_t *t = &auth->tokens[auth->count++];
    memset(t, 0, sizeof(*t));
    t->token = f[0], f[0] = NULL;
    t->user.name = f[1], f[1] = NULL;
    if (n > 2 && f[2][0])
        t->user.uid = f[2], f[2] = NULL;
    parse_groups(n > 3 ? f[3] : "", &t->user);
    ret = 0;
exit:
    for (size_t i = 0; i < CSV_MAX_FIELDS; i++)
        free(f[i]);
    return ret;
}

auth_t *auth_new(const char *token_file, lo_err_t *err)
{
    auth_t *auth = lo_calloc(1, sizeof(*auth));
    if (token_file == NULL)
        return auth;
    FILE *fp = fopen(token_file, "r");
    if (fp == NULL) {
        lo_err_set(err, 0, "", "cannot open token file %s", token_file);
        auth_free(auth);
        return NULL;
    }
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t got;
    while ((got = getline(&line, &cap, fp)) >= 0) {
        lineno++;
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r'))
            line[--got] = '\0';
        if (got == 0 || line[0] == '#')
            continue;
        if (add_line(auth, line, lineno, err) != 0) {
            free(line);
            fclose(fp);
            auth_free(auth);
            return NULL;
        }
    }
    free(line);
    fclose(fp);
    return auth;
}

void auth_free(auth_t *auth)
{
    if (auth == NULL)
        return;
    for (size_t i = 0; i < auth->count; i++) {
        OPENSSL_cleanse(auth->tokens[i].token, strlen(auth->tokens[i].token));
        free(auth->tokens[i].token);
        api_user_free(&auth->tokens[i].user);
    }
    free(auth->tokens);
    free(auth);
}

size_t auth_token_count(const auth_t *auth)
{
    return auth ? auth->count : 0;
}

int auth_authenticate(const auth_t *auth, const char *authorization, api_user_t *user)
{
    if (auth == NULL || authorization == NULL)
        return -1;
    if (strncasecmp(authorization, "Bearer ", 7) != 0)
        return -1;
    const char *token = authorization + 7;
    while (*token == ' ')
        token++;
    size_t len = strlen(token);
    int found = -1;
    /* scan every entry so the time taken does not depend on which token matched */
    for (size_t i = 0; i < auth->count; i++) {
        const char *t = auth->tokens[i].token;
        size_t tlen = strlen(t);
        if (tlen == len && CRYPTO_memcmp(t, token, len) == 0 && found < 0)
            found = (int)i;
    }
    if (found < 0)
        return -1;
    api_user_copy(user, &auth->tokens[found].user);
    return 0;
}

int auth_path_always_allowed(const char *path)
{
    static const char *const allowed[] = {"/healthz", "/livez", "/readyz"};
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
        size_t n = strlen(allowed[i]);
        if (strncmp(path, allowed[i], n) == 0 && (path[n] == '\0' || path[n] == '/' || path[n] == '?'))
            return 1;
    }
    return 0;
}
