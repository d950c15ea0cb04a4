/*
 * events.h - core/v1 Events about langop objects, recorded in
 * kube-apiserver as client-go's event recorder and EventCorrelator record
 * them, so that `kubectl describe languagecluster c1` lists what the
 * reconcile thread did and what failed.
 *
 * The Event. For an involved object O (apiVersion, kind, metadata.name,
 * and, where it has them, metadata.namespace, uid, resourceVersion):
 *   - namespace: O's namespace, or "default" when O is cluster-scoped (a
 *     LanguageCluster), as kube records events about Nodes;
 *   - name: "<O's name>.<nanoseconds of the wall clock, in hex>" (16 hex
 *     digits for any date after 2006), unique within one recorder;
 *   - involvedObject {apiVersion, kind, name, namespace, uid,
 *     resourceVersion} (the absent ones left out), type, reason, message,
 *     source {component, host}, reportingComponent (= component),
 *     reportingInstance (= host, "" without one), firstTimestamp,
 *     lastTimestamp (RFC 3339, seconds), count 1, eventTime null.
 * The message is made valid UTF-8 (each invalid byte becomes U+FFFD) and
 * cut to 1024 bytes at a character boundary (kube's limit on an Event's
 * note). Every text travels as a JSON string: quotes, backslashes and line
 * breaks arrive as they were sent.
 *
 * Correlation, in client-go's order (tools/record/events_cache.go):
 *   1. Aggregation. Events that differ only in their message (same
 *      involved object, source, type and reason): from the 10th distinct
 *      message within 10 minutes of the previous one, each is recorded as
 *      one shared Event, "(combined from similar events): <message>".
 *   2. Dedup. An Event seen before (same involved object kind, namespace,
 *      name, uid and apiVersion, type, reason, message and source) is not
 *      created again: the Event recorded for it is patched (strategic merge
 *      patch: count + 1, lastTimestamp, message). A patch answered 404 (the
 *      Event was deleted, or expired) creates it again under the same name,
 *      with the count it would have had. Unlike client-go, an Event last
 *      seen more than 10 minutes ago starts over (a new Event, count 1):
 *      kube-apiserver forgets Events an hour after their last change
 *      (--event-ttl), and a fault back after a quiet spell reads better as
 *      a new line of `kubectl describe`.
 *   3. Spam filter. Per involved object (and source), a token bucket of 25
 *      that refills one token every 5 minutes; every event takes one,
 *      patches too. An event that finds no token is dropped: nothing is
 *      sent, event_record returns EVENT_DROPPED (steps 1 and 2 still count
 *      it, so the next Event sent carries the true count).
 * Each of the three remembers at most cache_size keys (4096), least
 * recently used forgotten first: memory is bounded whatever the callers
 * record. A forgotten key only costs a new Event instead of a patch.
 *
 * Clock. Timestamps, names, both windows and the buckets read one wall
 * clock (options.now_ns), so a test can move time by hand; a clock stepped
 * back only delays what is due.
 *
 * Failures are the caller's to log: a request that fails returns its
 * KUBE_E* code and err (kubeclient.h); nothing is retried beyond what the
 * kube client retries, so no call takes longer than the client's timeouts
 * (plus, for a key being sent by another thread, that thread's call).
 *
 * Threads: event_record() may be called from any number of threads at
 * once. No lock is held during a request; two calls about the same Event
 * are sent one after the other (the second waits for the first's answer,
 * so it patches what the first created instead of creating it twice).
 * event_recorder_free() only once no call is running.
 */
#ifndef LANGOP_RECONCILE_EVENTS_H
#define LANGOP_RECONCILE_EVENTS_H

#include <stdint.h>
#include <jansson.h>
#include "langop/core/common.h"
#include "langop/kube/kubeclient.h"

/* Non-negative returns of event_record() (failures are negative KUBE_E* codes). */
#define EVENT_RECORDED 0 /* created, or patched */
#define EVENT_DROPPED 1  /* kept back by the spam filter: nothing sent */

#define EVENT_MESSAGE_MAX 1024 /* bytes of an Event's message */

typedef struct event_recorder_options {
    int64_t (*now_ns)(void *ctx); /* wall clock, ns since the epoch; NULL: CLOCK_REALTIME */
    void *now_ctx;                /* passed to now_ns */
    int cache_size;               /* keys each cache remembers; 0: 4096 */
} event_recorder_options_t;

typedef struct event_recorder event_recorder_t;

/**
 * A recorder that writes through kube (borrowed: it must outlive the
 * recorder). component is source.component and reportingComponent (NULL:
 * "langop-apiserver"); host is source.host and reportingInstance (NULL or
 * "": none; a pod name, say). Both are copied. opts may be NULL.
 */
event_recorder_t *event_recorder_new(kube_client_t *kube, const char *component, const char *host,
                                     const event_recorder_options_t *opts);
void event_recorder_free(event_recorder_t *r);

/**
 * Records that something happened to involved (borrowed; read during the
 * call only): type "Normal" or "Warning", reason a short UpperCamelCase
 * word ("RolloutStarted"), message for people (NULL: ""). Returns
 * EVENT_RECORDED, EVENT_DROPPED, KUBE_EINVAL and err for a bad argument
 * (another type, no reason, involved without apiVersion, kind or
 * metadata.name, a name or namespace that is not a path segment), or the
 * KUBE_E* code and err of the request that failed.
 */
int event_record(event_recorder_t *r, const json_t *involved, const char *type, const char *reason,
                 const char *message, lo_err_t *err);

/** event_record() with a printf-style message. */
int event_recordf(event_recorder_t *r, const json_t *involved, const char *type, const char *reason,
                  lo_err_t *err, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

#endif
