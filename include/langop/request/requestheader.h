/*
 * requestheader.h - the front-proxy's identity headers (kube's
 * "requestheader" authentication), as pure functions over a request.
 *
 * kube-apiserver, when it proxies a request to us through the aggregation
 * layer, authenticates itself with its front-proxy client certificate and
 * says who the user is in headers: a user name (first non-empty of the
 * username headers), a uid, one header line per group, and one header
 * line per extra value under a prefix (X-Remote-Extra-<key>, the key
 * lower-cased and %-escaped). These headers are only to be believed on a
 * connection whose certificate was verified (auth.h does that); on every
 * other request they are removed (requestheader_strip) so that nothing
 * later in the request's life reads a claim nobody vouched for.
 *
 * Header names are compared case-insensitively (the request holds them
 * lower-cased, message.h). The config is immutable once made: read it from
 * any thread.
 */
#ifndef LANGOP_REQUESTHEADER_H
#define LANGOP_REQUESTHEADER_H

#include "langop/request/message.h"

typedef struct requestheader_config requestheader_config_t;

/* The defaults kube-apiserver's front proxy uses. */
#define REQUESTHEADER_USERNAME_DEFAULT "X-Remote-User"
#define REQUESTHEADER_GROUP_DEFAULT "X-Remote-Group"
#define REQUESTHEADER_EXTRA_PREFIX_DEFAULT "X-Remote-Extra-"
#define REQUESTHEADER_UID_DEFAULT "X-Remote-Uid"

/**
 * A config from comma-separated lists; NULL (or "") takes the default above.
 * allowed_names NULL or "": any common name the CA vouches for is allowed.
 * Never fails. Free with requestheader_config_free.
 */
requestheader_config_t *requestheader_config_new(const char *username_headers, const char *group_headers,
                                                 const char *extra_prefixes, const char *uid_headers,
                                                 const char *allowed_names);
void requestheader_config_free(requestheader_config_t *cfg);

/** 1 if a front-proxy certificate with this Subject CN may assert identities. */
int requestheader_name_allowed(const requestheader_config_t *cfg, const char *cn);

/**
 * An extra key as sent after the prefix (n bytes) as kube reads it:
 * lower-cased, then %XX-unescaped; a key with a malformed escape is kept
 * as it is (lower-cased). A new string, caller frees.
 */
char *requestheader_extra_key(const char *s, size_t n);

/**
 * The identity the headers of req assert: name, uid, groups, extra (user
 * is filled, caller frees with api_user_free). Groups are capped at what
 * api_user_t holds, minus one slot for system:authenticated.
 * Returns 0, or -1 (user untouched) when no username header is non-empty.
 */
int requestheader_user(const requestheader_config_t *cfg, const api_request_t *req, api_user_t *user);

/** Removes every header of req that the config names (username, group, uid, extra prefix). */
void requestheader_strip(const requestheader_config_t *cfg, api_request_t *req);

#endif
