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
 * The replay is read from the store in pages (watch_read_page), each in
 * one snapshot and bounded in items and bytes, as the client takes them:
 * first the state (resourceVersion unset or "0": every object at one rv,
 * page after page at that rv), then the event log after that rv (or after
 * the client's resourceVersion), until the pages reach what the live feed
 * has delivered; from there the watcher follows the feed. The watcher's
 * state machine (watcher.h) decides when to read the next page and when to
 * go live.
 */
#ifndef LANGOP_WATCH_H
#define LANGOP_WATCH_H

#include <stdint.h>
#include <jansson.h>
#include "langop/core/common.h"
#include "langop/core/selector.h"
#include "langop/request/encode.h"
#include "langop/request/options.h"
#include "langop/request/reqinfo.h"
#include "langop/schema/schema.h"
#include "langop/schema/table.h"
#include "langop/storage/store.h"

#define WATCH_BOOKMARK_INTERVAL_MS 60000  /* the default: kube's watch cache sends one about every minute */
#define WATCH_MIN_REQUEST_TIMEOUT_S 1800   /* kube's --min-request-timeout: default watch length is 1-2x this */
#define WATCH_MAX_TIMEOUT_S (10LL * 365 * 24 * 3600) /* a longer timeoutSeconds is taken as this */

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
} watch_spec_t;

/**
 * What a read of kind k selects and how it is encoded, as info and its
 * decoded options say: the namespace, the selectors (a name given in the
 * path selects by metadata.name), the format and the Table's include. The
 * part a watch shares with a LIST streamed in pages (liststream.h); the
 * other fields are left zero. On success the caller owns *out
 * (watch_spec_free).
 */
int watch_spec_select(const schema_kind_t *k, const reqinfo_t *info, const options_t *opts, watch_spec_t *out,
                      lo_err_t *err);

/**
 * The watch of kind k that info (namespace, name) and its decoded options
 * (options.h: selectors, resourceVersion, allowWatchBookmarks,
 * timeoutSeconds, the format) ask for: 406 for YAML, which has no watch
 * framing. On success the caller owns *out (watch_spec_free).
 */
int watch_spec_parse(const schema_kind_t *k, const reqinfo_t *info, const options_t *opts, watch_spec_t *out,
                     lo_err_t *err);
void watch_spec_free(watch_spec_t *spec);
/** watch_spec_free, then frees spec itself (a spec from lo_calloc: api_response_t.watch_free). */
void watch_spec_destroy(watch_spec_t *spec);

/** 1 if obj (borrowed) matches spec's label and field selectors. */
int watch_spec_matches(const watch_spec_t *spec, const json_t *obj);

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

/**
 * A JSON event line from stored bytes: {"type":T,"object":<body>}\n, where
 * body is the object's compact JSON with metadata.resourceVersion already
 * the event's rv (as the feed and the store hold it). malloc'd, *len set.
 */
char *watch_encode_body(store_event_type_t type, const char *body, size_t body_len, size_t *len);

#define WATCH_PAGE_ITEMS 500                 /* objects or events read into one replay page at most */
#define WATCH_PAGE_BYTES (1024u * 1024u)     /* ... and about this many bytes of them */

typedef enum watch_phase {
    WATCH_PHASE_STATE = 0,    /* sending the objects as of cursor.at_rv, as ADDED */
    WATCH_PHASE_EVENTS = 1,   /* sending the event log after cursor.after_rv */
} watch_phase_t;

/* Where a replay stands: read and advanced by watch_read_page (one page at a time). */
typedef struct watch_cursor {
    watch_phase_t phase;
    int64_t at_rv;            /* state: the snapshot's rv (0 before the first page) */
    char *after_ns;           /* state: the key after which the next page starts (malloc'd; NULL: the start) */
    char *after_name;
    int64_t after_rv;         /* events: the next page holds events after this rv */
} watch_cursor_t;

/** The cursor a watch of spec starts from. */
void watch_cursor_init(watch_cursor_t *c, const watch_spec_t *spec);
void watch_cursor_free(watch_cursor_t *c);

typedef struct watch_page {
    char *data;            /* the page's lines, concatenated (malloc'd; may be NULL) */
    size_t len;
    int64_t seen;          /* every change up to this rv is covered by the pages so far */
    int caught_up;         /* the event log was read to the end of its snapshot (seen = its newest rv) */
    int columns_sent;      /* a Table watch: a line of this page carried the column definitions */
    int failed;            /* the page is one ERROR line: end the watch after it */
    /* pages of a LIST's answer (liststream.h), never of a watch: */
    int final;             /* the answer's last page: end the response after it */
    int broken;            /* the answer cannot be completed: cut the response off (no data) */
} watch_page_t;

/**
 * Reads the next page of spec's replay at cursor (blocking: a worker
 * thread's job) and advances the cursor. with_columns: the first Table line
 * still has to carry the column definitions.
 */
void watch_read_page(store_t *store, const watch_spec_t *spec, watch_cursor_t *cursor, int with_columns,
                     watch_page_t *out);
void watch_page_free(watch_page_t *page);

#endif
