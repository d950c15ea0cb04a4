/*
 * records.h - the vocabulary a store and its engines share: the codes they
 * answer, the records of a list and of the event log, the transaction
 * handle. The store's contract (store.h) and the engine interface
 * (storage/backend.h) both build on it, so neither includes the other.
 */
#ifndef LANGOP_RECORDS_H
#define LANGOP_RECORDS_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "langop/core/common.h"

typedef struct store store_t;         /* the store (store.h); engines hold it opaque */
typedef struct store_txn store_txn_t;

/* Return codes (negative) of store functions. */
enum store_rc {
    STORE_OK = 0,
    STORE_NOT_FOUND = -1,   /* no such object */
    STORE_EXPIRED = -2,     /* requested rv is older than the compaction horizon */
    STORE_FUTURE_RV = -3,   /* requested rv is newer than any committed change */
    STORE_ABORTED = -4,     /* a check callback refused; err was filled by it */
    STORE_IO = -5,          /* the backend failed; err->message says how */
    STORE_CONFLICT = -6,    /* the key is no longer at expect_rv: read again and retry */
    STORE_EXISTS = -7,      /* expect_rv was STORE_RV_ABSENT and the key exists */
    STORE_BUSY = -8,        /* the writer's queue is full: nothing was queued; try again later */
};

typedef enum store_event_type {
    STORE_EVENT_ADDED = 1,
    STORE_EVENT_MODIFIED = 2,
    STORE_EVENT_DELETED = 3,
} store_event_type_t;

/** "ADDED", "MODIFIED", "DELETED". */
static inline const char *store_event_type_name(store_event_type_t type)
{
    switch (type) {
    case STORE_EVENT_ADDED: return "ADDED";
    case STORE_EVENT_MODIFIED: return "MODIFIED";
    case STORE_EVENT_DELETED: return "DELETED";
    }
    return "UNKNOWN";
}

/** A filter of lists: 1 keeps obj. */
typedef int (*store_filter_fn)(const json_t *obj, void *ctx);

typedef struct store_list_opts {
    const char *resource;
    const char *ns;            /* NULL = every namespace */
    int64_t at_rv;             /* 0 = newest; otherwise the state exactly at this rv */
    const char *after_ns;      /* continue after this key (both NULL = from the start) */
    const char *after_name;
    size_t limit;              /* 0 = no limit: at most this many items */
    size_t max_bytes;          /* 0 = no bound: stop once the items read hold this many bytes (at least one) */
    int skip_remaining;        /* do not count the matches after the page (remaining stays -1) */
    store_filter_fn filter;    /* NULL = keep everything; applied before limit */
    void *filter_ctx;
} store_list_opts_t;

typedef struct store_list_result {
    json_t *items;             /* new: array of objects */
    int64_t rv;                /* the rv this list reflects (at_rv, or the newest) */
    int more;                  /* 1 when items were cut by limit and more may match */
    char *last_ns;             /* key of the last item returned when more == 1 (malloc'd) */
    char *last_name;
    int64_t remaining;         /* count of matching items after this page if known, else -1 */
} store_list_result_t;

/** One change of the event log. Pointers are borrowed for the duration of the call. */
typedef struct store_event {
    int64_t rv;
    store_event_type_t type;
    const char *resource;
    const char *ns;
    const char *name;
    const json_t *object;   /* state at rv (for DELETED: the last state, carrying the deletion rv) */
    const json_t *prev;     /* MODIFIED: the state before, when asked for; else NULL */
} store_event_t;

/** Called for each event of store_events(); return 0 to go on, non-zero to stop after this one. */
typedef int (*store_event_fn)(void *ctx, const store_event_t *ev);

typedef struct store_events_opts {
    const char *resource;
    const char *ns;            /* NULL = every namespace */
    int64_t after_rv;          /* events with rv > after_rv */
    size_t limit;              /* 0 = all: at most this many events of resource/ns */
    int with_prev;             /* fill ev->prev for MODIFIED events */
} store_events_opts_t;

#endif
