/*
 * selfreview.h - the two reviews a user asks about itself, for kubectl
 * auth whoami and kubectl auth can-i when the server runs standalone:
 *   POST /apis/authentication.k8s.io/v1/selfsubjectreviews       who am I
 *   POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews  may I
 * Both answer for req->user (the impersonated user when impersonating);
 * the second asks the configured authorizer. Behind kube-apiserver's
 * aggregator these paths are kube-apiserver's own and never reach us.
 */
#ifndef LANGOP_SELFREVIEW_H
#define LANGOP_SELFREVIEW_H

#include "langop/request/authz.h"
#include "langop/request/message.h"
#include "langop/request/reqinfo.h"

/**
 * Answers info if it names one of the reviews: fills resp (201 with the
 * review and its status, or a Status error) and returns 1; returns 0 for
 * any other request. authz (borrowed) may be NULL: everything is allowed.
 */
int selfreview_handle(authz_t *authz, const api_request_t *req, const reqinfo_t *info, api_response_t *resp);

/**
 * Answers GET /apis/authentication.k8s.io/v1 and
 * /apis/authorization.k8s.io/v1 with their APIResourceList (the review
 * only): 1 when it did, 0 for any other request. /apis does not list these
 * groups (they are kube-apiserver's own).
 */
int selfreview_discovery(const char *method, const char *path, api_response_t *resp);

#endif
