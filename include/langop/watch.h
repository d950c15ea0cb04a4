/*
 * watch.h - the Kubernetes semantics of watch, without the transport:
 * parsing a watch request, deciding what a watcher sees of each change,
 * encoding event lines, and the replay a new watcher needs before it
 * follows live changes.
 *
 * A watch is a stream of lines, one JSON object each:
 *   {"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR","object":{...}}
 * resourceVersion unset or "0": the current objects as ADDED, then changes;
 * resourceVersion N: every change after N, then live; N older than the
 * compaction horizon: one ERROR event (410 Expired) and the end.
 * With selectors, an object that stops matching is sent as DELETED and one
 * that starts matching as ADDED (kube's watch cache does the same).
 *
 * The transport (server.c) registers the watcher with its hub before the
 * replay is read, holds live events that arrive meanwhile, and after the
 * replay sends only those with rv > replay.up_to: no gap, no duplicate.
 */
#ifndef LANGOP_WATCH_H
#define LANGOP_WATCH_H

#include <stdint.h>
#include <jansson.h>
#include "langop/common.h"
#include "langop/encode.h"
#include "langop/reqinfo.h"
#include "langop/schema.h"
#include "langop/selector.h"
#include "langop/store.h"
#include "langop/table.h"

#define WATCH_BOOKMARK_INTERVAL_MS 60000  /* the default: kube's watch cache sends one about every minute */
#define WATCH_MIN_REQUEST_TIMEOUT_S 1800   /* kube's --min-request-timeout: default watch length is 1-2x this */

typedef struct watch_spec {
    const schema_kind_t *kind;
    char *ns;                    /* NULL: every namespace */
    label_selector_t *labels;
    field_selector_t *fields;
    int selecting;               /* labels or fields restrict the watch */
    int with_state;              /* resourceVersion unset or "0": current objects first, as ADDED */
    int64_t rv;                  /* otherwise: changes after this rv */
    int bookmarks;               /* allowWatchBookmarks=true */
    int64_t timeout_ms;          /* when the server ends the watch */
    encode_format_t format;      /* ENCODE_JSON or ENCODE_TABLE */
    table_include_t include;     /* for Table watches */
    const char *cluster_domain;  /* borrowed, static: for the computed status of replayed objects */
} watch_spec_t;

/**
 * Parses a watch request for kind k (namespace, selectors, resourceVersion,
 * allowWatchBookmarks, timeoutSeconds, Accept). 400 for bad parameters,
 * 406 for an unacceptable Accept. On success the caller owns *out
 * (watch_spec_free).
 */
int watch_spec_parse(const schema_kind_t *k, const reqinfo_t *info, const char *accept, watch_spec_t *out,
                     lo_err_t *err);
void watch_spec_free(watch_spec_t *spec);

/**
 * What spec sees of ev: the event type to send (STORE_EVENT_*) or 0 for
 * nothing; *object is the object to send (borrowed from ev: the previous
 * state when the object left the selector).
 */
int watch_event_type(const watch_spec_t *spec, const store_event_t *ev, const json_t **object);

/**
 * One event line for spec, "\n"-terminated (malloc'd, *len set). The
 * object's resourceVersion is set to rv. with_columns: a Table watch's
 * first event carries columnDefinitions, later ones do not.
 */
char *watch_encode(const watch_spec_t *spec, store_event_type_t type, const json_t *object, int64_t rv,
                   int with_columns, size_t *len);
/** A BOOKMARK line: an object of the watched kind carrying only the rv. */
char *watch_encode_bookmark(const watch_spec_t *spec, int64_t rv, size_t *len);
/** An ERROR line carrying the Status of err. */
char *watch_encode_error(const lo_err_t *err, size_t *len);

typedef struct watch_replay {
    char *data;            /* the replay's lines, concatenated (malloc'd; may be NULL) */
    size_t len;
    int64_t up_to;         /* live events with rv <= up_to are covered by the replay */
    int columns_sent;      /* a Table watch: the replay's first line carried the columns */
    int failed;            /* the replay is one ERROR line: end the watch after it */
} watch_replay_t;

/** Reads the replay of spec from the store (blocking: a worker thread's job). */
void watch_replay(store_t *store, const watch_spec_t *spec, watch_replay_t *out);
void watch_replay_free(watch_replay_t *replay);

#endif
