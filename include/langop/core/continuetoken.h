/*
 * continuetoken.h - the opaque `continue` token of paginated lists.
 *
 * Like kube-apiserver's: base64 of {"v":"meta.k8s.io/v1","rv":N,"start":"<key>"}
 * where key is "<namespace>/<name>" of the last item returned ("" namespace
 * for cluster-scoped objects). The next page is read at rv N, after key.
 * Decoding untrusted tokens never crashes: bad input gives -1 and err 400
 * BadRequest ("continue key is not valid: ...").
 */
#ifndef LANGOP_CONTINUETOKEN_H
#define LANGOP_CONTINUETOKEN_H

#include <stdint.h>
#include "langop/core/common.h"

/** New token for (rv, ns, name); caller frees. */
char *continue_token_encode(int64_t rv, const char *ns, const char *name);

/** Decodes token. On success *ns and *name are malloc'd (caller frees). */
int continue_token_decode(const char *token, int64_t *rv, char **ns, char **name, lo_err_t *err);

#endif
