// The commit the binary was built from: `make build` writes build_commit.h (not in git) with SWIFTQ_COMMIT before each
// build, rewriting it only when the commit changes; a plain `swift build` without it reports none.
#include "CSupport.h"

#if __has_include("build_commit.h")
#include "build_commit.h"
#endif
#ifndef SWIFTQ_COMMIT
#define SWIFTQ_COMMIT ""
#endif

const char *sq_build_commit(void) { return SWIFTQ_COMMIT; }
