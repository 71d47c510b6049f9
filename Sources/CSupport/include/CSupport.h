// CSupport: what Swift cannot do safely inside a signal handler. No Swift API of its own: SwiftQCore wraps it.
#ifndef SWIFTQ_CSUPPORT_H
#define SWIFTQ_CSUPPORT_H

/// Remembers a temporary file to delete if the process is interrupted (SIGINT, SIGTERM, SIGHUP) before it is
/// renamed or removed. Returns a slot for `sq_tmp_forget`, or -1 when every slot is taken (the file is then
/// not cleaned up on a signal, but still on every ordinary failure).
int sq_tmp_remember(const char *path);

/// Stops remembering a slot (after the file was renamed to its final name or removed).
void sq_tmp_forget(int slot);

/// Between these two calls (the renames that put a run's outputs in place) SIGINT, SIGTERM and SIGHUP are held:
/// the handler only records the signal, and `sq_tmp_end_commit` acts on it once every output is in place, so an
/// interrupted run never leaves some of its outputs under their final names and not others.
void sq_tmp_begin_commit(void);
void sq_tmp_end_commit(void);

/// Installs the handlers once: on SIGINT, SIGTERM or SIGHUP every remembered file is unlinked, then the
/// signal's default action runs (the process ends as it would have).
void sq_tmp_install_signal_handlers(void);

/// The git commit the binary was built from (abbreviated, "-dirty" with uncommitted changes), or "" when the build
/// did not record one.
const char *sq_build_commit(void);

#endif
