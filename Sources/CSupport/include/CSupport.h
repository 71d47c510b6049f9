// CSupport: what Swift cannot do safely inside a signal handler. No Swift API of its own: SwiftQCore wraps it.
#ifndef SWIFTQ_CSUPPORT_H
#define SWIFTQ_CSUPPORT_H

/// Remembers a temporary file to delete if the process is interrupted (SIGINT, SIGTERM, SIGHUP) before it is
/// renamed or removed. Returns a slot for `sq_tmp_forget`, or -1 when every slot is taken (the file is then
/// not cleaned up on a signal, but still on every ordinary failure).
int sq_tmp_remember(const char *path);

/// Stops remembering a slot (after the file was renamed to its final name or removed).
void sq_tmp_forget(int slot);

/// Installs the handlers once: on SIGINT, SIGTERM or SIGHUP every remembered file is unlinked, then the
/// signal's default action runs (the process ends as it would have).
void sq_tmp_install_signal_handlers(void);

#endif
