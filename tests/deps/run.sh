#!/usr/bin/env bash
# rssl as a dependency of a fresh project, written the way README's
# "Using rssl as a dependency" says, built from this checkout without the
# network, then a TLS echo through it (dep_echo in each project):
#   1. rebar3: {rssl, {git, Url, {branch, "main"}}}
#   2. rebar3 with no cargo on PATH: the build stops with rssl's message
#   3. mix:    {:rssl, path: ".../erlang", manager: :rebar3}
#   4. mix:    {:rssl, git: Url, branch: "main", subdir: "erlang", manager: :rebar3}
# Url is a git repository made from the working tree as it is (tracked and
# untracked files, not the ignored ones), so uncommitted changes are tested
# too. Run by `make test-deps` (part of `make test`).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/tests/deps
rebar3=${REBAR3:-rebar3}
MIX_REBAR3=${MIX_REBAR3:-$(command -v "$rebar3")}
export MIX_REBAR3
# Nothing may come from the network: cargo takes its crates from Cargo.lock
# and ~/.cargo/registry, mix needs no Hex. (REBAR_OFFLINE=1 would stop
# rebar3 fetching even from a file:// URL; the URL is local anyway.)
export CARGO_NET_OFFLINE=true HEX_OFFLINE=1
# Scratch projects are ordinary user projects, not rssl's own build.
unset CARGO_TARGET_DIR MIX_ENV

tmp=$(mktemp -d "${TMPDIR:-/tmp}/rssl-deps.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

step() { echo "== deps: $*"; }
fail() { echo "deps: FAILED: $*" >&2; exit 1; }

# The echo's certificate: self-signed for "localhost", which the clients verify.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$tmp/key.pem" -out "$tmp/cert.pem" -days 2 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost 2>/dev/null

# The repository the git dependencies fetch: the working tree, committed.
src=$tmp/rssl
mkdir "$src"
(cd "$root" && git ls-files -z --cached --others --exclude-standard |
   while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
   tar --null -T - -cf -) | tar -xf - -C "$src"
git -C "$src" init -q -b main
git -C "$src" add -A
git -C "$src" -c user.name=rssl-tests -c user.email=rssl-tests@localhost -c commit.gpgsign=false \
  commit -qm snapshot
url=file://$src

# The git dependencies build rssl's Rust crate in their own clones. Their
# cargo target directory starts as a copy of the checkout's release build,
# so the crates rssl depends on are not compiled again (about 2 minutes on
# 2 cores); rssl itself is, from the clone.
cargo_target=$tmp/cargo-target
mkdir -p "$cargo_target"
if [ -d "$root/target/release" ]; then
  cp -a "$root/target/release" "$cargo_target/"
fi

# run_echo DIR CMD...: runs the echo and insists on its success line.
run_echo() {
  local dir=$1; shift
  local out
  out=$(cd "$dir" && "$@" 2>&1) || { echo "$out"; fail "echo in $dir"; }
  echo "$out" | grep -q '^dep_echo: ok' || { echo "$out"; fail "echo in $dir printed no success"; }
  echo "$out" | grep '^dep_echo: ok'
}

# 1. rebar3, git dependency.
step "rebar3 git dependency"
app=$tmp/rebar3_git
cp -r "$here/rebar3_git" "$app"
sed -i "s|@RSSL_URL@|$url|" "$app/rebar.config"
(cd "$app" && CARGO_TARGET_DIR=$cargo_target "$rebar3" compile) || fail "rebar3 compile with rssl as a git dependency"
[ -f "$app/_build/default/lib/rssl/priv/rssl_nif.so" ] || fail "rebar3: no priv/rssl_nif.so in the rssl dependency"
run_echo "$app" erl -noshell -pa "$app"/_build/default/lib/*/ebin -run dep_echo main "$tmp"

# 2. The same project from scratch with no cargo on PATH.
step "rebar3 git dependency, cargo missing"
nocargo=$tmp/rebar3_nocargo
cp -r "$here/rebar3_git" "$nocargo"
sed -i "s|@RSSL_URL@|$url|" "$nocargo/rebar.config"
# PATH without the folders that hold cargo (rustup's ~/.cargo/bin). Where
# cargo shares a folder with the tools the build needs (a distribution's
# cargo in /usr/bin), a cargo name that does not exist stands in for it
# (the Makefile's CARGO comes from the environment).
path_nocargo=$(printf '%s' "$PATH" | tr ':' '\n' |
  while IFS= read -r d; do [ -n "$d" ] && [ ! -x "$d/cargo" ] && printf '%s:' "$d"; done)
path_nocargo=${path_nocargo%:}
nocargo_env=(PATH="$path_nocargo")
for tool in "$rebar3" erl make git; do
  PATH=$path_nocargo command -v "$tool" >/dev/null || nocargo_env=(CARGO=rssl-test-no-cargo)
done
if out=$(cd "$nocargo" && env "${nocargo_env[@]}" "$rebar3" compile 2>&1); then
  echo "$out"; fail "rebar3 compile succeeded with no cargo"
fi
echo "$out" | grep -q "rssl: cannot build the NIF: '[a-z-]*cargo' not found on PATH" ||
  { echo "$out"; fail "no clear message when cargo is missing"; }
echo "cargo missing (${nocargo_env[0]%%=*} without it): the build stops with rssl's message"

# 3. mix, path dependency on the checkout's erlang/ (its hook builds the
# NIF in the checkout, which `make test` has already done).
mix_project() {
  local dir=$1 dep=$2
  cp -r "$here/mix" "$dir"
  sed -i "s|@RSSL_DEP@|$dep|" "$dir/mix.exs"
}
step "mix path dependency"
mixp=$tmp/mix_path
mix_project "$mixp" "{:rssl, path: \"$root/erlang\", manager: :rebar3}"
(cd "$mixp" && mix compile --warnings-as-errors) || fail "mix compile with rssl as a path dependency"
run_echo "$mixp" mix run -e "DepEcho.main(\"$tmp\")"

# 4. mix, git dependency.
step "mix git dependency"
mixg=$tmp/mix_git
mix_project "$mixg" "{:rssl, git: \"$url\", branch: \"main\", subdir: \"erlang\", manager: :rebar3}"
(cd "$mixg" && mix deps.get >/dev/null && CARGO_TARGET_DIR=$cargo_target mix compile --warnings-as-errors) ||
  fail "mix compile with rssl as a git dependency"
run_echo "$mixg" mix run -e "DepEcho.main(\"$tmp\")"

echo "deps: ok (rebar3 git, cargo missing, mix path, mix git)"
