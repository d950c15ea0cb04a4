/*
 * reconciler.h - the reconcile thread: makes the cluster hold what
 * desired.h computes for every LanguageCluster, and writes back what it
 * found into the clusters' status.
 *
 * Triggers (each adds the key of one LanguageCluster, its name, to the
 * work queue, workqueue.h; keys coalesce):
 *   - the store's change feed (feed.h): every committed change of a langop
 *     object names its cluster (a LanguageCluster itself, or the cluster of
 *     its namespace), never a poll of our own API;
 *   - informers (informer.h) on the cluster: the Secrets (key names and
 *     resourceVersions only, never values) and every object it manages
 *     (label app.kubernetes.io/managed-by=langop-apiserver), so a rotated
 *     key or an object changed or deleted behind its back brings it back;
 *   - a full resync every resync period (10 min) repairs anything missed.
 *
 * One reconcile of cluster <c> (a worker; never two for one key at once):
 * read the cluster and the langop objects of namespace <c> through the API
 * (api_call: what a user reads), build the desired objects, apply each one
 * whose hash differs from what the informer holds with server-side apply
 * (fieldManager langop-apiserver, force), delete the managed objects of <c>
 * no longer desired (never a Namespace), then write the cluster's status
 * when it changed. A cluster being deleted has nothing desired: once what
 * it managed is gone, its finalizer RECONCILE_FINALIZER is removed. A
 * failure puts the key back with per-key backoff (0.5 s to 5 min); every
 * write to kube-apiserver takes a token of the write rate limit.
 *
 * Events (events.h) on the langop objects, so `kubectl describe` tells
 * what happened: Created, Updated (a workload's pods change),
 * GatewayRollout, DriftRepaired, Deleted (pruned), SecretNotFound and
 * SecretFound on a model, and the Warning ReconcileFailed with the
 * failure's message.
 *
 * Threads: reconciler_start starts the informers, the workers and a resync
 * thread; reconciler_stop stops and joins them all within about a second:
 * it ends the kube client's calls in flight (kube_client_abort), so the
 * client must be the reconciler's own.
 */
#ifndef LANGOP_RECONCILE_RECONCILER_H
#define LANGOP_RECONCILE_RECONCILER_H

#include <stdint.h>
#include "langop/api/api.h"
#include "langop/core/common.h"
#include "langop/kube/kubeclient.h"

#define RECONCILE_FINALIZER "langop.io/cluster-resources"

typedef struct reconciler_options {
    kube_client_t *kube;          /* borrowed, its own: must outlive the reconciler, which aborts it when stopping */
    api_t *api;                   /* borrowed; likewise */
    const char *cluster_domain;   /* NULL: cluster.local */
    const char *gateway_image;    /* NULL: desired.h's pinned image */
    const char *event_host;       /* source.host of its Events (the pod's name); NULL: none */
    int workers;                  /* 0: 2 */
    int64_t resync_ms;            /* 0: 10 min */
    double write_qps;             /* writes to kube-apiserver per second; 0: 20 */
    int write_burst;              /* 0: 40 */
    int64_t backoff_base_ms;      /* 0: 500 (tests lower it) */
    int64_t backoff_max_ms;       /* 0: 5 min */
} reconciler_options_t;

typedef struct reconciler reconciler_t;

/** Starts reconciling; NULL and err when it cannot (an informer that cannot start). */
reconciler_t *reconciler_start(const reconciler_options_t *opts, lo_err_t *err);
void reconciler_stop(reconciler_t *r);

#endif
