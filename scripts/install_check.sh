#!/bin/bash
# `make install` into a temporary prefix, then what a user does with it: the version names the commit, every man
# page renders, the bash completion registers, zsh finds its completion on fpath, fish completes a subcommand, and the
# progress bar draws escape codes on a terminal only, not with NO_COLOR, TERM=dumb or a pipe.
# usage: scripts/install_check.sh PYTHON
set -euo pipefail
PY=${1:-python3}
fails=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fails=$((fails + 1)); fi; }
for p in man-db groff-base zsh fish; do
  dpkg-query -W -f='${Status}\n' $p 2>/dev/null | grep -q '^install ok installed$' || {
    s=$([ "$(id -u)" = 0 ] || echo sudo); $s apt-get update -qq && DEBIAN_FRONTEND=noninteractive $s apt-get install -y -qq $p >/dev/null; }
done
P=$(mktemp -d)
trap 'rm -rf "$P"' EXIT
make --no-print-directory install PREFIX="$P" >/dev/null
check "swiftq --version names the commit" "'$P/bin/swiftq' --version | grep -qE '^[0-9.]+ \(commit [0-9a-f]{12}(-dirty)?\)$'"
for cmd in swiftq swiftq.quantize swiftq.eval swiftq.sensitivity swiftq.inspect swiftq.bench swiftq.convert; do
  page="$P/share/man/man1/$cmd.1"
  check "man -l $cmd.1 renders" "[ -f '$page' ] && MANWIDTH=100 man -l '$page' 2>/dev/null | grep -q 'swiftq'"
done
check "man -l swiftq.quantize.1 documents --calib" "MANWIDTH=100 man -l '$P/share/man/man1/swiftq.quantize.1' 2>/dev/null | grep -q -- '--calib'"
check "bash completion registers" "bash -c 'source \"$P/share/bash-completion/completions/swiftq\" && complete -p swiftq' | grep -q swiftq"
check "zsh completion registers on fpath" "zsh -c 'fpath=($P/share/zsh/site-functions \$fpath); autoload -U compinit; compinit -u -d $P/zcompdump; print -r -- \$_comps[swiftq]' | grep -qx _swiftq"
check "fish completes subcommands" "fish -c \"source $P/share/fish/vendor_completions.d/swiftq.fish; complete -C 'swiftq qua'\" | grep -q '^quantize'"
# The progress bar: eval on the fixture images through a pseudo-terminal, with and without NO_COLOR and TERM=dumb,
# and through a pipe.
out=$("$PY" - "$P/bin/swiftq" <<'PYEOF'
import os, pty, subprocess, sys
binary = sys.argv[1]
cmd = [binary, 'eval', 'Fixtures/tiny_cnn.onnx', '--data', 'Fixtures/images', '--preset', 'torch']
def through_pty(extra):
    env = dict(os.environ, TERM='xterm')
    env.pop('NO_COLOR', None)
    env.update(extra)
    master, slave = pty.openpty()
    p = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    data = b''
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    p.wait()
    return data
piped = subprocess.run(cmd, capture_output=True, env={k: v for k, v in os.environ.items() if k != 'NO_COLOR'})
print('tty', b'\x1b[' in through_pty({}))
print('no_color', b'\x1b[' in through_pty({'NO_COLOR': '1'}))
print('dumb', b'\x1b[' in through_pty({'TERM': 'dumb'}))
print('pipe', b'\x1b[' in piped.stdout + piped.stderr)
PYEOF
)
check "a terminal gets the redrawn bar" "grep -q '^tty True$' <<< \"$out\""
check "NO_COLOR gets no escape codes" "grep -q '^no_color False$' <<< \"$out\""
check "TERM=dumb gets no escape codes" "grep -q '^dumb False$' <<< \"$out\""
check "a pipe gets no escape codes" "grep -q '^pipe False$' <<< \"$out\""
[ "$fails" = 0 ] && echo "install check: all passed" || { echo "install check: $fails failed"; exit 1; }
