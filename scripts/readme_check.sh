#!/usr/bin/env bash
# Follows the README's set-up verbatim on a fresh clone, as a new user would: clones this repository's HEAD
# into a temporary folder, takes the commands of README.md's "## Set-up" section (its indented code lines, so
# the check cannot drift from the text) and runs each exactly as written from the clone's root, with HOME in
# the temporary folder (so `~/.local` is a fresh one), then checks that `musae` is on the PATH a login shell
# would have (Debian's ~/.profile adds ~/.local/bin once it exists) and runs. Prints each command's time.
# Nothing is reused from other builds. Usage: scripts/readme_check.sh  (KEEP=1 keeps the folder)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/musae-readme.XXXXXX")
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$tmp"' EXIT
t0=$(date +%s)

# the commands, in order: indented lines from "## Set-up" up to the next heading
mapfile -t cmds < <(awk '/^## Set-up/ {on = 1; next} on && /^#/ {exit} on && /^    [^ ]/ {sub(/^    /, ""); print}' \
                    "$root/README.md")
[ ${#cmds[@]} -ge 2 ] || { echo "readme_check: found ${#cmds[@]} command(s) in README.md's Set-up section" >&2; exit 1; }

commit=$(git -C "$root" rev-parse HEAD)
git clone -q "$root" "$tmp/musae"
git -C "$tmp/musae" checkout -q "$commit"
echo "readme_check: fresh clone of $(git -C "$root" rev-parse --short=12 HEAD) in $tmp/musae; ${#cmds[@]} commands"
mkdir -p "$tmp/home"
timings=()
for c in "${cmds[@]}"; do
  echo "readme_check: \$ $c"
  t=$(date +%s)
  (cd "$tmp/musae" && HOME="$tmp/home" bash -euo pipefail -c "$c") 2>&1 | tee -a "$tmp/out.txt" \
    || { echo "readme_check: FAILED: '$c' (README.md, Set-up)" >&2; exit 1; }
  timings+=("$(( $(date +%s) - t )) s  $c")
done

# musae as the README writes it: on the PATH of the next login, from the install step
export HOME="$tmp/home" PATH="$tmp/home/.local/bin:$PATH"
where=$(command -v musae || true)
[ "$where" = "$tmp/home/.local/bin/musae" ] || { echo "readme_check: musae on PATH is '$where', not the installed one" >&2; exit 1; }
(cd / && musae --version && musae info "$tmp/musae/tests/fixtures/tiny-musicgen" >/dev/null) \
  || { echo "readme_check: the installed musae does not run" >&2; exit 1; }
grep -q '^done: build [0-9]* s, demo [0-9]* s, total [0-9]* s' "$tmp/out.txt" \
  || { echo "readme_check: no closing line with the build and total time from the demo" >&2; exit 1; }

echo "readme_check: timings (2 cores: $(nproc) here)"
for t in "${timings[@]}"; do echo "  $t"; done
echo "readme_check: passed in $(( $(date +%s) - t0 )) s (clone, the README's commands, the PATH check)"
