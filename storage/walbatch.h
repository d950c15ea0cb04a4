/*
 * walbatch.h - an SQLite VFS that writes a transaction's WAL frames with one
 * write instead of two per page. Private to storage/.
 *
 * SQLite writes each WAL frame as two writes (its 24-byte header, then the
 * page), so a commit of N pages makes 2N system calls; under group commit
 * that was four per create, most of the writer thread's system time. This
 * VFS, a thin layer over the default one, gathers the writes of the WAL
 * file that follow one another and hands them to the default VFS as one
 * write when the commit frame (the frame whose header carries the database
 * size, always the last of a transaction) has been written - the write of
 * its page returns that write's result, so a failure fails the commit as
 * before, and nothing of the transaction is published by then.
 *
 * Invariants: the bytes reach the file before anything can read them: a
 * read, size, truncation, sync, lock or close of the WAL writes the
 * gathered bytes first, and so do the shared-memory calls of its database
 * (a barrier precedes the publication of new frames in the wal-index, which
 * is how other connections learn of them). A write that does not follow
 * the gathered ones writes them first. A failure to write where no error
 * can be returned (a barrier: the commit frame was not recognised) ends the
 * process: frames the wal-index would name must be in the file, and a
 * restart recovers the WAL up to its last whole transaction.
 */
#ifndef LANGOP_STORAGE_WALBATCH_H
#define LANGOP_STORAGE_WALBATCH_H

/** The VFS's name for sqlite3_open_v2(), registered on first call (any thread); NULL if it cannot be. */
const char *walbatch_vfs(void);

#endif
