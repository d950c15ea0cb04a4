/*
 * server.h - the HTTPS front end: h2o with OpenSSL, HTTP/2 and HTTP/1.1 by
 * ALPN, authentication, a pool of worker threads that run api_handle(),
 * and one log line per request.
 *
 * Threads: one event-loop thread (the caller of server_run) owns every
 * socket and h2o object; worker threads run api_handle(), which may block
 * on the store, and hand their response back to the loop through an h2o
 * multithread queue. A request whose client went away before its response
 * was ready is dropped safely (the job outlives the request, not the other
 * way round).
 */
#ifndef LANGOP_SERVER_H
#define LANGOP_SERVER_H

#include "langop/api/api.h"
#include "langop/core/common.h"
#include "langop/request/auth.h"

typedef struct server_options {
    const char *bind_address;    /* "0.0.0.0", "127.0.0.1", "::" ... */
    int port;
    const char *cert_file;       /* PEM serving certificate (chain) */
    const char *key_file;        /* PEM private key; the pair is reloaded when the files change */
    int tls_min_version;         /* TLS1_2_VERSION or TLS1_3_VERSION; 0: TLS 1.2 */
    const char *tls_cipher_suites; /* comma list of IANA names; NULL: ECDHE with AEAD (langop/http/tls.h) */
    int workers;                 /* worker threads; 0: one per CPU, at least 2 */
    int64_t bookmark_interval_ms; /* watch bookmarks when idle; 0: the default (1 min) */
    int64_t shutdown_grace_ms;    /* how long a stopping server waits for the answers it owes */
    int max_requests_inflight;    /* read-only requests being served at most; 0: no limit (langop/http/edge.h) */
    int max_mutating_requests_inflight; /* other requests being served at most; 0: no limit */
    int max_watches;              /* open watches at most; 0: no limit */
} server_options_t;

/**
 * Serves until SIGINT or SIGTERM. api and auth are borrowed.
 * Returns 0 after a clean stop, -1 with err if it could not start.
 */
int server_run(api_t *api, const auth_t *auth, const server_options_t *opts, lo_err_t *err);

/**
 * Makes sure dir holds a self-signed serving certificate (apiserver.crt,
 * apiserver.key) for localhost, 127.0.0.1 and ::1, creating it if absent.
 * On success *cert_path and *key_path are malloc'd paths.
 */
int server_ensure_self_signed(const char *dir, char **cert_path, char **key_path, lo_err_t *err);

#endif
