/*
 * compactor.h - the background task that keeps the event log bounded:
 * every interval it compacts the store to the newest revision that still
 * leaves min_revisions revisions and min_age_seconds of history
 * (store_compact), so that watches can resume across short disconnects
 * while the database does not grow without end.
 */
#ifndef LANGOP_COMPACTOR_H
#define LANGOP_COMPACTOR_H

#include <stdint.h>
#include "langop/storage/store.h"

typedef struct compactor compactor_t;

/** Starts the compactor thread (store borrowed). interval_ms 0: never runs. */
compactor_t *compactor_start(store_t *store, int64_t interval_ms, int64_t min_revisions, int64_t min_age_seconds);
/** Stops the thread (waits for a compaction in progress) and frees it. */
void compactor_stop(compactor_t *c);

#endif
