/*
 * tls.c - TLS policy and certificate rotation (see langop/http/tls.h).
 */
#include "langop/http/tls.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <h2o.h>
#include <openssl/err.h>

/*
 * The TLS 1.2 default: forward secrecy (ECDHE) and AEAD ciphers only; CBC
 * modes and RSA key exchange are left out. ECDSA first: our certificates
 * are EC; an RSA certificate picks the RSA ones.
 */
static const char TLS12_DEFAULT_CIPHERS[] = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
                                            "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:"
                                            "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305";

/* every TLS 1.3 suite OpenSSL has, so that any of them can be looked up by name */
static const char TLS13_ALL_SUITES[] = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:"
                                       "TLS_AES_128_CCM_SHA256:TLS_AES_128_CCM_8_SHA256";

/* what identifies one version of a file: a rename over it changes the inode, a rewrite mtime/size */
typedef struct file_sig {
    int exists;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
} file_sig_t;

struct tls {
    tls_options_t opts;            /* paths borrowed from the caller */
    char *tls12, *tls13;           /* cipher lists in OpenSSL's names, "" for the defaults */
    const h2o_iovec_t *alpn;
    SSL_CTX *listen_ctx;           /* fixed: h2o accepts with it */
    SSL_CTX *current;              /* the newest good pair; new connections move onto it */
    file_sig_t cert_sig, key_sig;  /* as seen at the last check */
};

int tls_parse_min_version(const char *name, int *version, lo_err_t *err)
{
    if (strcmp(name, "VersionTLS12") == 0) {
        *version = TLS1_2_VERSION;
        return 0;
    }
    if (strcmp(name, "VersionTLS13") == 0) {
        *version = TLS1_3_VERSION;
        return 0;
    }
    lo_err_set(err, 0, "", "--tls-min-version %s is not supported: use VersionTLS12 or VersionTLS13", name);
    return -1;
}

/* every cipher OpenSSL can offer, insecure ones included, so that a name is found wherever it is */
static SSL_CTX *all_ciphers_ctx(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    if (ctx == NULL)
        lo_fatal("cannot create an SSL_CTX");
    SSL_CTX_set_cipher_list(ctx, "ALL:COMPLEMENTOFALL:@SECLEVEL=0");
    SSL_CTX_set_ciphersuites(ctx, TLS13_ALL_SUITES);
    return ctx;
}

static const SSL_CIPHER *find_cipher(STACK_OF(SSL_CIPHER) *all, const char *iana)
{
    for (int i = 0; i < sk_SSL_CIPHER_num(all); i++) {
        const SSL_CIPHER *c = sk_SSL_CIPHER_value(all, i);
        const char *std = SSL_CIPHER_standard_name(c);
        if (std != NULL && strcmp(std, iana) == 0)
            return c;
    }
    return NULL;
}

static void append(lo_buf_t *b, const char *name)
{
    if (b->len > 0)
        lo_buf_char(b, ':');
    lo_buf_puts(b, name);
}

int tls_translate_cipher_suites(const char *iana, char **tls12, char **tls13, lo_err_t *err)
{
    SSL_CTX *ctx = all_ciphers_ctx();
    STACK_OF(SSL_CIPHER) *all = SSL_CTX_get_ciphers(ctx);
    lo_buf_t b12 = {0}, b13 = {0};
    char *list = lo_strdup(iana), *save = NULL;
    int rc = 0;
    for (char *name = strtok_r(list, ", ", &save); name != NULL; name = strtok_r(NULL, ", ", &save)) {
        const SSL_CIPHER *c = find_cipher(all, name);
        if (c == NULL) {
            lo_err_set(err, 0, "", "--tls-cipher-suites: unknown cipher suite %s", name);
            rc = -1;
            break;
        }
        append(strcmp(SSL_CIPHER_get_version(c), "TLSv1.3") == 0 ? &b13 : &b12, SSL_CIPHER_get_name(c));
    }
    free(list);
    SSL_CTX_free(ctx);
    if (rc != 0) {
        free(b12.data);
        free(b13.data);
        return -1;
    }
    *tls12 = b12.data ? b12.data : lo_strdup("");
    *tls13 = b13.data ? b13.data : lo_strdup("");
    return 0;
}

/* err gets what, then OpenSSL's first queued error (the queue is cleared) */
static void set_ssl_error(lo_err_t *err, const char *what)
{
    char buf[256];
    ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
    ERR_clear_error();
    lo_err_set(err, 0, "", "%s: %s", what, buf);
}

/* The handshake takes any client chain: which CA must vouch for it depends on the authenticator. */
static int accept_any_chain(int preverify_ok, X509_STORE_CTX *ctx)
{
    (void)preverify_ok;
    (void)ctx;
    return 1;
}

/*
 * A context with the policy and the pair as the files hold them now; NULL
 * with err if the pair does not load or match. Versions and ciphers only
 * matter on the listening context (a connection keeps those it was created
 * with), but every context gets them so that each one alone is right.
 */
static SSL_CTX *new_ctx(const tls_t *tls, lo_err_t *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        lo_fatal("cannot create an SSL_CTX");
    SSL_CTX_set_min_proto_version(ctx, tls->opts.min_version ? tls->opts.min_version : TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_set_cipher_list(ctx, tls->tls12[0] ? tls->tls12 : TLS12_DEFAULT_CIPHERS) != 1 ||
        (tls->tls13[0] && SSL_CTX_set_ciphersuites(ctx, tls->tls13) != 1)) {
        set_ssl_error(err, "cannot use the cipher suites");
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, tls->opts.cert_file) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, tls->opts.key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        char *what = lo_sprintf("cannot load TLS certificate %s / key %s", tls->opts.cert_file, tls->opts.key_file);
        set_ssl_error(err, what);
        free(what);
        SSL_CTX_free(ctx);
        return NULL;
    }
    h2o_ssl_register_alpn_protocols(ctx, tls->alpn);
    if (tls->opts.request_client_cert) {
        /* every context alike: a connection moved onto a newer one takes its verify mode */
        static const unsigned char sid_ctx[] = "langop-apiserver";
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_any_chain);
        SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    }
    return ctx;
}

/* Runs on every handshake, SNI or not, before the certificate is chosen. */
static int on_servername(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    tls_t *tls = arg;
    if (tls->current != SSL_get_SSL_CTX(ssl))
        SSL_set_SSL_CTX(ssl, tls->current); /* takes its own reference */
    return SSL_TLSEXT_ERR_OK;
}

static file_sig_t file_sig(const char *path)
{
    file_sig_t sig;
    memset(&sig, 0, sizeof(sig)); /* padding too: signatures are compared with memcmp */
    struct stat st;
    if (stat(path, &st) == 0) {
        sig.exists = 1;
        sig.dev = st.st_dev;
        sig.ino = st.st_ino;
        sig.size = st.st_size;
        sig.mtime = st.st_mtim;
        sig.ctime = st.st_ctim;
    }
    return sig;
}

tls_t *tls_new(const tls_options_t *opts, const h2o_iovec_t *alpn, lo_err_t *err)
{
    tls_t *tls = lo_calloc(1, sizeof(*tls));
    tls->opts = *opts;
    tls->alpn = alpn;
    if (opts->cipher_suites != NULL) {
        if (tls_translate_cipher_suites(opts->cipher_suites, &tls->tls12, &tls->tls13, err) != 0)
            goto fail;
    } else {
        tls->tls12 = lo_strdup("");
        tls->tls13 = lo_strdup("");
    }
    /* signatures first: a change while loading is then seen at the next check */
    tls->cert_sig = file_sig(opts->cert_file);
    tls->key_sig = file_sig(opts->key_file);
    if ((tls->listen_ctx = new_ctx(tls, err)) == NULL)
        goto fail;
    SSL_CTX_set_tlsext_servername_callback(tls->listen_ctx, on_servername);
    SSL_CTX_set_tlsext_servername_arg(tls->listen_ctx, tls);
    SSL_CTX_up_ref(tls->listen_ctx);
    tls->current = tls->listen_ctx;
    return tls;
fail:
    tls_free(tls);
    return NULL;
}

SSL_CTX *tls_ctx(tls_t *tls)
{
    return tls->listen_ctx;
}

int tls_reload_if_changed(tls_t *tls)
{
    file_sig_t cert = file_sig(tls->opts.cert_file), key = file_sig(tls->opts.key_file);
    if (memcmp(&cert, &tls->cert_sig, sizeof(cert)) == 0 && memcmp(&key, &tls->key_sig, sizeof(key)) == 0)
        return 0;
    /* remembered even if the load fails: one warning per change, and a retry at the next one */
    tls->cert_sig = cert;
    tls->key_sig = key;
    lo_err_t err = {0};
    SSL_CTX *ctx = new_ctx(tls, &err);
    if (ctx == NULL) {
        lo_log(LO_INFO, "Warning: serving certificate not reloaded, the old one stays in use: %s", err.message);
        lo_err_clear(&err);
        return -1;
    }
    SSL_CTX_free(tls->current); /* open connections hold their own references */
    tls->current = ctx;
    lo_log(LO_INFO, "Loaded a new serving certificate from %s (key %s)", tls->opts.cert_file, tls->opts.key_file);
    return 1;
}

void tls_free(tls_t *tls)
{
    if (tls == NULL)
        return;
    SSL_CTX_free(tls->current);
    SSL_CTX_free(tls->listen_ctx);
    free(tls->tls12);
    free(tls->tls13);
    free(tls);
}
