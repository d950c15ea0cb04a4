/*
 * cascade.h - a LanguageCluster owns the namespace of its name: deleting it
 * deletes the namespace's langop objects, as deleting a Namespace deletes
 * its contents in Kubernetes, and it stays (terminating) until they are gone.
 *
 * The reading of Kubernetes followed (a Namespace, its finalizer and the
 * NamespaceLifecycle admission):
 *  - A DELETE of a LanguageCluster marks it: metadata.deletionTimestamp and
 *    the finalizer CASCADE_FINALIZER in metadata.finalizers (so a client
 *    sees why it stays). In the same commit every object of the namespace,
 *    of every namespaced kind of the schema, is deleted as a DELETE of it
 *    would be: one without finalizers goes (DELETED), one with finalizers
 *    is marked (deletionTimestamp) and waits for them.
 *  - When the namespace holds no object any more - in that same commit, or
 *    in the commit that deletes its last object (an update that empties
 *    its finalizers, or a delete) - CASCADE_FINALIZER is removed, and the
 *    cluster is deleted if no other finalizer holds it (DELETED, carrying
 *    its last stored state, as an update that empties the finalizers does).
 *  - While it is terminating, creates in the namespace are refused (403,
 *    cause NamespaceTerminating: admission's membership rule), and a create
 *    of a LanguageCluster of that name is 409 AlreadyExists (the key exists).
 *  - propagationPolicy does not change this (kube's namespace controller
 *    ignores it too: a namespace's contents are not its dependents):
 *    Orphan, Background and Foreground all delete the contents.
 *  - Preconditions apply to the cluster only; the contents go whatever
 *    their versions (the namespace controller's deletes carry none).
 *  - A dry run writes nothing; the answer says what would happen (gone, or
 *    the marked cluster that would wait).
 *  - CASCADE_FINALIZER is an ordinary finalizer: a client that removes it
 *    forces the cluster's deletion, as removing any finalizer does; what is
 *    left of the namespace is still being deleted and goes with its own
 *    finalizers.
 *
 * How: the rule is a write's after rule (store.h, store_op_t.after), so
 * each step is one commit of the store's writer with its own rvs in order,
 * and watchers see every step. The registry puts it on every write it hands
 * to the writer (handlers_defer), so every commit keeps the invariant:
 *
 *     a LanguageCluster being deleted that lists CASCADE_FINALIZER has a
 *     non-empty namespace, all of whose objects are being deleted.
 *
 * The rule is a function of the stored state, not of what happened before:
 * run twice it changes nothing the second time. A restart therefore needs
 * no recovery (there is no step half done), and a state this rule did not
 * make (a database written by an older binary) is settled at the cluster's
 * next write: a DELETE again, or any update.
 */
#ifndef LANGOP_CASCADE_H
#define LANGOP_CASCADE_H

#include <stddef.h>
#include <jansson.h>
#include "langop/schema/schema.h"
#include "langop/storage/store.h"

#define CASCADE_FINALIZER "langop.io/namespace-contents"
#define CASCADE_OWNER_RESOURCE "languageclusters"

/** What the rule did in one write, for its answer; filled by the writer. */
typedef struct cascade_result {
    int gone;           /* the write's LanguageCluster was deleted by it (a dry run: would be) */
    json_t *cluster;    /* new ref or NULL: the cluster as the rule released it (without CASCADE_FINALIZER;
                           also when gone, for a deletecollection's answer: no finalizer is left to wait for) */
    size_t deleted;     /* objects of the namespace deleted (a dry run: that would be) */
    size_t marked;      /* objects of the namespace marked, left to their finalizers */
} cascade_result_t;

/** 1 if deleting an object of kind k takes the namespace of its name with it (LanguageCluster). */
int cascade_owns_namespace(const schema_kind_t *k);

/**
 * Marks cluster (a copy the caller owns, changed in place) as a DELETE
 * does: deletionTimestamp and CASCADE_FINALIZER. One being deleted already
 * is left as it is (no new finalizers once deletion began).
 */
void cascade_mark(json_t *cluster);

/**
 * Puts the rule on op (store_op_t.after). result (may be NULL) receives
 * what it did; it must stay valid until op is answered, and is cleared at
 * each run. The caller releases it with cascade_result_clear.
 */
void cascade_attach(store_op_t *op, cascade_result_t *result);

void cascade_result_clear(cascade_result_t *result);

#endif
