/*
 * certauth.h - client certificates: is a TLS client's chain signed by a
 * given CA, and who does its subject name (CN = user, O = groups, as kube
 * reads it).
 *
 * The TLS listener accepts any chain (server.c) so that a client without a
 * certificate, or with one we cannot verify, still completes the
 * handshake and may authenticate otherwise; which CA a chain has to verify
 * against depends on the authenticator (front proxy or client
 * certificate), so verification happens here, per request, with the
 * chain server.c copied into api_request_t.peer_chain_pem.
 *
 * A certauth_ca_t is immutable once loaded; verifying from many threads at
 * once is safe (OpenSSL's X509_STORE is read-only during verification).
 */
#ifndef LANGOP_CERTAUTH_H
#define LANGOP_CERTAUTH_H

#include "langop/core/common.h"
#include "langop/request/message.h"

typedef struct certauth_ca certauth_ca_t;

/** The CA bundle in a PEM file. NULL and err when it holds no certificate or cannot be read. */
certauth_ca_t *certauth_ca_load(const char *file, lo_err_t *err);
/** The same from PEM text (e.g. a ConfigMap's value); what names the source goes in err. */
certauth_ca_t *certauth_ca_from_pem(const char *pem, const char *source, lo_err_t *err);
void certauth_ca_free(certauth_ca_t *ca);

#define CERTAUTH_VERIFIED 1
#define CERTAUTH_NONE 0       /* no certificate was presented */
#define CERTAUTH_REJECTED (-1) /* presented, and it does not verify (or cannot be parsed) */

/**
 * Verifies chain_pem (leaf first, then intermediates; may be NULL) for
 * client authentication against ca, at the current time. On
 * CERTAUTH_VERIFIED, subject (may be NULL) gets name = the leaf's Subject
 * CN (NULL when it has none) and groups = its O values; the caller frees
 * it with api_user_free. No system:authenticated is added here.
 */
int certauth_verify(const certauth_ca_t *ca, const char *chain_pem, api_user_t *subject);

#endif
