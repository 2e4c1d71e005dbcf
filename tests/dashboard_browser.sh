#!/usr/bin/env bash
# The dashboard in a real browser (issue 17's acceptance): a demo-like site (tests/dashboard/make_site.sh: the
# tiny model's capture -> train -> analyze, hostile labels, a steer folder, one source removed) opened from the
# file system by headless Debian chromium, which runs tests/dashboard/harness.html over it: the index sorted and
# filtered, the summary and every feature page loaded, every request and src/href inside the site folder,
# every <audio> source loaded and decoded (readyState >= 1), a <script> label shown as text, the missing source
# a marked gap. No page may log to the console (an uncaught error is a console line). Screenshots of the index
# and of one feature page go to OUT/ for inspection. Installs nothing: chromium comes from scripts/install-deps.sh.
#   usage: dashboard_browser.sh [OUT]     (MUSAE_BIN names the binary; OUT defaults to $MUSAE_TEST_TMP/dashboard_browser)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
musae=${MUSAE_BIN:?MUSAE_BIN must name the musae binary}
out=${1:-${MUSAE_TEST_TMP:-/tmp}/dashboard_browser}
fail() { echo "dashboard_browser: FAIL: $*" >&2; exit 1; }
# a path as a file:// URL path: every byte outside [A-Za-z0-9/._~-] percent-encoded
urlencode() {
  local LC_ALL=C s=$1 out="" c i
  for ((i = 0; i < ${#s}; i++)); do
    c=${s:i:1}
    case "$c" in [A-Za-z0-9/._~-]) out+="$c" ;; *) out+=$(printf '%%%02X' "'$c") ;; esac
  done
  printf '%s' "$out"
}
command -v chromium >/dev/null || fail "chromium is not installed (scripts/install-deps.sh installs Debian's chromium)"
command -v sox >/dev/null || fail "sox is not installed (scripts/install-deps.sh)"
rm -rf "$out" && mkdir -p "$out"
w="$out/work"
bash "$here/dashboard/make_site.sh" "$musae" "$root" "$w" || fail "building the site failed (logs in $w)"
site="$w/site dir"
F=$(cat "$w/feature.txt")
[ -f "$site/index.html" ] && [ -f "$site/features/f$F.html" ] || fail "the site lacks index.html or features/f$F.html"
# nothing in the pages, scripts or styles points at the network
if grep -rlE "https?://|//cdn|@import|url\(" --include='*.html' --include='*.js' --include='*.css' "$site"; then
  fail "a page names a network resource (above)"
fi
cp "$here/dashboard/harness.html" "$site/_harness.html"
url="file://$(urlencode "$site")"
chrome=(chromium --headless --disable-gpu --no-sandbox --no-first-run --disable-extensions --user-data-dir="$out/profile"
        --allow-file-access-from-files)
# virtual time runs the harness's timers without waiting; the budget only bounds a harness that never finishes
timeout 500 "${chrome[@]}" --enable-logging=stderr --v=0 --virtual-time-budget=100000000 \
  --dump-dom "$url/_harness.html#F=$F" >"$out/dom.html" 2>"$out/chromium.log" || fail "chromium failed (see $out/chromium.log)"
verdict=$(sed -n '/<pre id="verdict">/,/<\/pre>/p' "$out/dom.html" | sed 's/<[^>]*>//g; s/&lt;/</g; s/&gt;/>/g; s/&amp;/\&/g')
echo "$verdict"
grep -q '^DONE' <<<"$verdict" || fail "the harness did not finish (see $out/dom.html, $out/chromium.log)"
if grep -q '^FAIL' <<<"$verdict"; then fail "$(grep -c '^FAIL' <<<"$verdict") check(s) failed"; fi
[ "$(grep -c '^PASS' <<<"$verdict")" -ge 20 ] || fail "fewer checks ran than expected"
# any console line from a page (an uncaught error, a failed resource) fails the test
if grep -E ':CONSOLE' "$out/chromium.log" | grep -v '_harness.html'; then fail "a page wrote to the console (above)"; fi
if grep -E ':CONSOLE' "$out/chromium.log"; then fail "the harness wrote to the console (above)"; fi
for shot in "index.png index.html 1200,900" "feature.png features/f$F.html 1200,1800"; do
  set -- $shot
  timeout 120 "${chrome[@]}" --window-size="$3" --screenshot="$out/$1" "$url/$2" >/dev/null 2>&1 \
    || fail "screenshot of $2 failed"
  [ "$(head -c 4 "$out/$1" | od -An -c | tr -d ' ')" = "211PNG" ] || fail "$out/$1 is not a PNG"
done
echo "dashboard_browser: all checks passed; screenshots in $out/index.png and $out/feature.png"
