/*
 * informer.h - a local copy of one collection of kube-apiserver, kept
 * current by list + watch, as client-go's informers keep theirs.
 *
 * One thread per informer: LIST the collection (pages of 500, with the
 * label selector), replace the cache with it, then WATCH from the list's
 * resourceVersion. The watch is resumed from the last event's (or
 * bookmark's) resourceVersion whenever the stream ends cleanly; 410 Gone
 * means the server no longer has that history, and a stream or a watch
 * that fails may have missed anything: the informer lists again, as
 * client-go's reflector does. A failure waits with backoff (0.5 s doubling
 * to 30 s) before the next try, and the first list that succeeds after
 * failures calls on_recovered (a caller whose own retries backed off while
 * the server was away can start over at once).
 * After a relist, every difference with the old cache is passed on as an
 * event, so nothing that happened while the stream was down goes unseen.
 *
 * The cache is keyed by namespace and name. Every object has apiVersion
 * and kind, as watch events carry them (a list's items get the list's,
 * which kube leaves out of them). transform (may be NULL) turns
 * each object into what is kept (the Secret informer keeps key names, never
 * values); events carry the transformed objects.
 *
 * Threads: on_event is called on the informer's thread, outside its lock;
 * informer_get/list/upsert may be called from any thread.
 */
#ifndef LANGOP_RECONCILE_INFORMER_H
#define LANGOP_RECONCILE_INFORMER_H

#include <jansson.h>
#include "langop/core/common.h"
#include "langop/kube/kubeclient.h"

/*
 * type is "ADDED", "MODIFIED" or "DELETED"; obj the object now (for
 * DELETED, its last state), old the one before (NULL for ADDED). Both
 * borrowed.
 */
typedef void (*informer_event_fn)(void *ctx, const char *type, const json_t *obj, const json_t *old);

typedef struct informer_options {
    const char *path;           /* the collection, e.g. "/api/v1/secrets" (no query) */
    const char *label_selector; /* NULL: every object */
    json_t *(*transform)(const json_t *obj); /* a new object to keep; NULL keeps obj */
    informer_event_fn on_event; /* may be NULL */
    void (*on_recovered)(void *ctx); /* after a failure, the first list that succeeds; may be NULL */
    void *ctx;
    long watch_timeout_ms;      /* one watch request's length; 0: 5 min */
    long backoff_max_ms;        /* 0: 30 s */
} informer_options_t;

typedef struct informer informer_t;

/** An informer of kube (borrowed; must outlive it). Copies opts' strings. */
informer_t *informer_new(kube_client_t *kube, const informer_options_t *opts);
/** Starts its thread; -1 and err when the thread cannot start. */
int informer_start(informer_t *inf, lo_err_t *err);
/** Asks the thread to end, without waiting (stop many informers at once). */
void informer_signal_stop(informer_t *inf);
/** informer_signal_stop, then joins the thread. */
void informer_stop(informer_t *inf);
/** Frees a stopped (or never started) informer. NULL is fine. */
void informer_free(informer_t *inf);

/** Waits until the first LIST has filled the cache: 1, or 0 after timeout_ms. */
int informer_wait_synced(informer_t *inf, long timeout_ms);
/** 1 once the first LIST has filled the cache. */
int informer_synced(informer_t *inf);

/** The cached object ns/name (ns NULL or "" for cluster-scoped): a new reference, or NULL. */
json_t *informer_get(informer_t *inf, const char *ns, const char *name);
/**
 * The cached objects (a new array, in no particular order) of namespace ns
 * (NULL: every namespace) whose label label_key equals label_value
 * (label_key NULL: all).
 */
json_t *informer_list(informer_t *inf, const char *ns, const char *label_key, const char *label_value);
/**
 * Puts obj (borrowed; e.g. the answer of our own write) into the cache
 * now, so that the next read does not act on the state before the write;
 * ignored when the cache holds the same or a newer resourceVersion. No
 * event.
 */
void informer_upsert(informer_t *inf, const json_t *obj);

#endif
