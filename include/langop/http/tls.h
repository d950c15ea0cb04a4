/*
 * tls.h - the server's TLS policy and its serving certificate, reloaded
 * when the files change.
 *
 * Policy: TLS 1.2 at least (or 1.3 by option); for TLS 1.2 only ECDHE key
 * exchange with AES-GCM or CHACHA20-POLY1305 unless cipher suites are
 * given (IANA names; a list without TLS 1.2 names keeps this default);
 * TLS 1.3 suites stay at OpenSSL's defaults unless the list names some.
 *
 * Rotation: the listening context (tls_ctx) is fixed for the process; a
 * servername callback, which OpenSSL runs on every handshake, with or
 * without SNI, moves each new connection onto the context that holds the
 * newest good certificate. A connection keeps the context it started with
 * (it holds a reference), so a swap never touches an open connection.
 *
 * Threads: everything here runs on the event-loop thread (handshakes and
 * the reload check both do), so the current context needs no lock.
 */
#ifndef LANGOP_TLS_H
#define LANGOP_TLS_H

#include <h2o/memory.h>
#include <openssl/ssl.h>

#include "langop/core/common.h"

typedef struct tls_options {
    const char *cert_file;      /* PEM certificate chain */
    const char *key_file;       /* PEM private key */
    int min_version;            /* TLS1_2_VERSION or TLS1_3_VERSION; 0: TLS 1.2 */
    const char *cipher_suites;  /* comma list of IANA names; NULL: the default policy */
    int request_client_cert;    /* ask for a client certificate (never require one; any chain passes the
                                 * handshake: authentication verifies it against the CA it needs) */
} tls_options_t;

typedef struct tls tls_t;

/**
 * Parses kube's --tls-min-version value ("VersionTLS12", "VersionTLS13").
 * Returns 0 and sets *version, or -1 with err (older versions included:
 * they are refused, not accepted).
 */
int tls_parse_min_version(const char *name, int *version, lo_err_t *err);

/**
 * Translates a comma list of IANA cipher suite names into OpenSSL's TLS 1.2
 * cipher list (*tls12, "" if none) and TLS 1.3 suite list (*tls13, "" if
 * none); both malloc'd. Returns -1 with err on a name OpenSSL does not know.
 */
int tls_translate_cipher_suites(const char *iana, char **tls12, char **tls13, lo_err_t *err);

/**
 * Loads the pair and builds the contexts; alpn (NULL-terminated h2o list)
 * is borrowed and must outlive the result. Returns NULL with err if the
 * pair does not load, the key does not match, or the options are invalid.
 */
tls_t *tls_new(const tls_options_t *opts, const h2o_iovec_t *alpn, lo_err_t *err);

/** The context to listen with (h2o's accept_ctx.ssl_ctx); owned by tls. */
SSL_CTX *tls_ctx(tls_t *tls);

/**
 * Checks whether the certificate or key file changed (device, inode, size,
 * mtime, ctime) since the last check; if so, loads the pair into a new
 * context that new connections get from then on. A pair that does not load
 * or does not match keeps the old certificate and logs a warning once per
 * change seen. Returns 1 if swapped, 0 if nothing changed, -1 if kept.
 */
int tls_reload_if_changed(tls_t *tls);

void tls_free(tls_t *tls);

#endif
