/*
 * liststream.h - a LIST answered as it is read, so that the memory it takes
 * does not grow with its length: the objects are read from the store in
 * pages, every page at the one resourceVersion of the first (as the pages
 * of a paginated list are read), and each page is encoded (encode.h: a
 * List in pieces) and handed to the transport, which sends it with the
 * flow control of a watch replay (watcher.h, stream.h) and asks for the
 * next page only when the client has taken most of what it has.
 *
 * liststream_answer reads the first page on the request's worker. A
 * failure there is answered as a Status (410 for an expired continue
 * token, 504 for a future resourceVersion), and a list that fits in one
 * page is answered whole, with its length, as any answer. A longer list
 * becomes a stream (api_response_t.list): the 200 and the first page go
 * out, then liststream_next reads the following pages on a worker, as the
 * client takes them. A page that cannot be read later (the resourceVersion
 * was compacted meanwhile, which takes at least --history-min-age) breaks
 * the answer: the transport cuts the response off, so the client sees an
 * incomplete answer, never a complete-looking wrong one (kube-apiserver's
 * streaming list encoder does the same once its 200 is out).
 *
 * With a limit, the answer stops after that many items and its metadata
 * carries the continue token of the last one (and remainingItemCount when
 * no selector filters the list). The metadata comes before the items, so
 * when the limit is more than a page, a first scan that keeps nothing
 * counts the matches and finds the last item's key before the first byte
 * is written.
 *
 * The bytes are those of the whole List as encode_object and table_render
 * write it (JSON, YAML, Table), whatever the pages.
 */
#ifndef LANGOP_LISTSTREAM_H
#define LANGOP_LISTSTREAM_H

#include "langop/registry/handlers.h"
#include "langop/registry/watch.h"
#include "langop/storage/store.h"

#define LISTSTREAM_PAGE_ITEMS 500                /* objects read into one page at most */
#define LISTSTREAM_PAGE_BYTES (256u * 1024u)     /* ... and about this many stored bytes of them */
#define LISTSTREAM_LOW_WATER LISTSTREAM_PAGE_BYTES /* the next page is read once less than this waits */

typedef struct list_stream list_stream_t;

/**
 * Answers the list hr asks for; window holds the store options its limit,
 * continue token and resourceVersion resolved to (resource, namespace and
 * filter are set here). The answer is set in resp: an error, the whole
 * List, or the List's stream (resp->list, with its first page) for the
 * transport.
 */
void liststream_answer(const handler_request_t *hr, const store_list_opts_t *window, api_response_t *resp);

/**
 * The next page of the answer into out (blocking: a worker's job): its
 * bytes, final on the last, broken when the answer cannot be completed.
 * One page at a time.
 */
void liststream_next(list_stream_t *ls, store_t *store, watch_page_t *out);

/** What the stream selects and how it encodes (borrowed: lives as long as ls). */
const watch_spec_t *liststream_spec(const list_stream_t *ls);

void liststream_free(list_stream_t *ls);

#endif
