/*
 * certauth.c - client certificates against a CA (see langop/request/certauth.h).
 */
#include "langop/request/certauth.h"

#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

struct certauth_ca {
    X509_STORE *store;
};

certauth_ca_t *certauth_ca_load(const char *file, lo_err_t *err)
{
    X509_STORE *store = X509_STORE_new();
    if (X509_STORE_load_file(store, file) != 1) {
        char buf[256];
        ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
        ERR_clear_error();
        lo_err_set(err, 0, "", "cannot load CA file %s: %s", file, buf);
        X509_STORE_free(store);
        return NULL;
    }
    certauth_ca_t *ca = lo_calloc(1, sizeof(*ca));
    ca->store = store;
    return ca;
}

certauth_ca_t *certauth_ca_from_pem(const char *pem, const char *source, lo_err_t *err)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    STACK_OF(X509_INFO) *infos = PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL);
    BIO_free(bio);
    X509_STORE *store = X509_STORE_new();
    int added = 0;
    for (int i = 0; infos && i < sk_X509_INFO_num(infos); i++) {
        X509_INFO *info = sk_X509_INFO_value(infos, i);
        if (info->x509 && X509_STORE_add_cert(store, info->x509) == 1)
            added++;
    }
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    ERR_clear_error();
    if (added == 0) {
        lo_err_set(err, 0, "", "%s holds no CA certificate", source);
        X509_STORE_free(store);
        return NULL;
    }
    certauth_ca_t *ca = lo_calloc(1, sizeof(*ca));
    ca->store = store;
    return ca;
}

void certauth_ca_free(certauth_ca_t *ca)
{
    if (ca == NULL)
        return;
    X509_STORE_free(ca->store);
    free(ca);
}

/* The leaf and the rest of the chain from PEM; 0, or -1 when no certificate parses. */
static int chain_parse(const char *pem, X509 **leaf, STACK_OF(X509) **rest)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    *leaf = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    *rest = sk_X509_new_null();
    X509 *x;
    while (*leaf && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
        sk_X509_push(*rest, x);
    ERR_clear_error(); /* the end of the PEM stream is reported as an error */
    BIO_free(bio);
    return *leaf ? 0 : -1;
}

/* Every value of attribute nid in name, in order, into the NULL-terminated array out (room for max). */
static size_t name_values(X509_NAME *name, int nid, char **out, size_t max)
{
    size_t n = 0;
    for (int i = -1; n < max && (i = X509_NAME_get_index_by_NID(name, nid, i)) >= 0;) {
        unsigned char *utf8 = NULL;
        int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
        if (len >= 0)
            out[n++] = lo_strndup((const char *)utf8, (size_t)len);
        OPENSSL_free(utf8);
    }
    return n;
}

static void subject_of(X509 *leaf, api_user_t *subject)
{
    memset(subject, 0, sizeof(*subject));
    X509_NAME *name = X509_get_subject_name(leaf);
    char *cn[2] = {0};
    if (name_values(name, NID_commonName, cn, 1) == 1)
        subject->name = cn[0];
    /* one slot stays free for system:authenticated, one for the terminating NULL */
    name_values(name, NID_organizationName, subject->groups, API_MAX_GROUPS - 2);
}

int certauth_verify(const certauth_ca_t *ca, const char *chain_pem, api_user_t *subject)
{
    if (chain_pem == NULL || chain_pem[0] == '\0')
        return CERTAUTH_NONE;
    X509 *leaf;
    STACK_OF(X509) *rest;
    int rc = CERTAUTH_REJECTED;
    if (chain_parse(chain_pem, &leaf, &rest) == 0) {
        X509_STORE_CTX *ctx = X509_STORE_CTX_new();
        if (X509_STORE_CTX_init(ctx, ca->store, leaf, rest) == 1 &&
            X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT) == 1 && X509_verify_cert(ctx) == 1) {
            rc = CERTAUTH_VERIFIED;
            if (subject)
                subject_of(leaf, subject);
        }
        X509_STORE_CTX_free(ctx);
        ERR_clear_error();
    }
    X509_free(leaf);
    sk_X509_pop_free(rest, X509_free);
    return rc;
}
