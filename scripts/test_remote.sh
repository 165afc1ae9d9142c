#!/usr/bin/env bash
# On-demand test of the remote graph store (`graph.store: ws://...`): nanodex against a real SurrealDB server
# (`surreal start`, in-memory storage, on 127.0.0.1), on three inputs: the Java and mixed-language fixtures and a
# copy of part of the installed Python standard library. For each:
#   - `extract` writes the graph into the server, and `graph-inspect`, `graph show` and `graph query` read it back;
#   - the server's graph equals, table by table and record by record, the graph the embedded store holds for the
#     same input;
#   - (stdlib) after one file is edited, a second run re-parses that file only and again equals the embedded
#     store's graph of the edited input; `--full` rebuilds it to the same graph;
#   - a wrong password is one clear error line, and nothing is written; a reply above 64 MiB reads back;
#   - the writer lease of a namespace: another writer's fresh lease refuses a run in one line naming it; a stale
#     one, or one of an exited process of this host, is taken over; of two real writers from two workspaces the
#     second is refused; after kill -9 of a writer the next one takes over at once and completes the graph; a writer
#     whose lease was taken from it stops without switching to its graph.
# Not part of CI: the server is built from the `surrealdb-server` crate (tools/surreal-server), a full SurrealDB
# build (about 25 min on 2 cores the first time, into $HOME/.cache/nanodex/target-surreal).
# Usage: make test-remote
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/nanodex/target}"
SURREAL_TARGET=${SURREAL_TARGET:-$HOME/.cache/nanodex/target-surreal}
# NANODEX_BIN / SURREAL_BIN: binaries to use instead of building them.
BIN=${NANODEX_BIN:-}
if [ -z "$BIN" ]; then
  cargo build --release --locked --quiet -p nanodex-cli
  BIN=$CARGO_TARGET_DIR/release/nanodex
fi
SURREAL=${SURREAL_BIN:-}
if [ -z "$SURREAL" ]; then
  echo "building SurrealDB's server (tools/surreal-server) into $SURREAL_TARGET ..."
  CARGO_TARGET_DIR=$SURREAL_TARGET cargo build --locked --quiet --manifest-path tools/surreal-server/Cargo.toml
  SURREAL=$SURREAL_TARGET/debug/surreal
fi

TMP=$(mktemp -d)
SERVER_PID=
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
PASS=secret-$RANDOM
"$SURREAL" start --bind "127.0.0.1:$PORT" --user root --pass "$PASS" --log warn memory > "$TMP/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 300); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 1)" 2>/dev/null && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$TMP/server.log"; echo "FAIL: the server did not start"; exit 1; }
  sleep 0.2
done
echo "server: SurrealDB $("$SURREAL" version 2>/dev/null | tail -1) on 127.0.0.1:$PORT"
export NANODEX_DB_USER=root NANODEX_DB_PASS=$PASS

FAILED=0
fail() { echo "FAIL: $*"; FAILED=1; }
ok() { echo "ok:   $*"; }
# field EXPR: EXPR over the JSON document on stdin (`d`).
field() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }

# dump WS [CONFIG]: every table of the graph's database with its records sorted by id, as one JSON document
# {table: [records]}. The tables are listed by the store itself (INFO FOR DB), so a table added to the schema is
# compared too; `graph_state` is left out, as it holds the time of the write.
dump() {
  local tables
  tables=$("$BIN" graph query "INFO FOR DB" --workspace "$1" ${2:+--config "$2"} \
    | field '" ".join(sorted(t for t in d[0]["tables"] if t != "graph_state"))')
  local t sql=""
  for t in $tables; do sql+="SELECT * FROM \`$t\` ORDER BY id; "; done
  "$BIN" graph query "$sql" --workspace "$1" ${2:+--config "$2"} | TABLES="$tables" python3 -c '
import json, os, sys
print(json.dumps(dict(zip(os.environ["TABLES"].split(), json.load(sys.stdin))), sort_keys=True, indent=1))'
}
# remote_config NAMESPACE: a config file that points the store at the server, in its own namespace.
remote_config() {
  printf 'graph:\n  store: "ws://127.0.0.1:%s"\n  namespace: %s\n' "$PORT" "$1" > "$TMP/$1.yaml"
  echo "$TMP/$1.yaml"
}
# same NAME REMOTE_WS REMOTE_CFG EMBEDDED_WS: the remote graph equals the embedded one.
same() {
  dump "$2" "$3" > "$TMP/remote.json"
  dump "$4" > "$TMP/embedded.json"
  local records
  records=$(python3 -c "import json; print(sum(map(len, json.load(open('$TMP/remote.json')).values())))")
  if [ "$records" -eq 0 ]; then fail "$1: the server's graph is empty"
  elif cmp -s "$TMP/remote.json" "$TMP/embedded.json"; then ok "$1: server graph = embedded graph ($records records)"
  else fail "$1: server graph differs from the embedded graph"; diff "$TMP/embedded.json" "$TMP/remote.json" | head -20 || true
  fi
}

STDLIB=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
mkdir -p "$TMP/stdlib"
for pkg in json email http; do cp -r "$STDLIB/$pkg" "$TMP/stdlib/"; done
for input in tests/fixtures/java tests/fixtures/mixed "$TMP/stdlib"; do
  name=$(basename "$input"); ns=t_$name
  cfg=$(remote_config "$ns"); rws=$TMP/ws-remote-$name; ews=$TMP/ws-embedded-$name
  "$BIN" extract "$input" --workspace "$rws" --config "$cfg" --json > "$TMP/extract.json" \
    || { fail "$name: extract into the server"; continue; }
  "$BIN" extract "$input" --workspace "$ews" --json > /dev/null
  parsed=$(field 'd["report"]["parsed"]' < "$TMP/extract.json")
  inserted=$(field 'd["write"]["inserted"]' < "$TMP/extract.json")
  ok "$name: extracted into the server ($parsed files parsed, $inserted records inserted)"
  same "$name" "$rws" "$cfg" "$ews"
  inspect=$("$BIN" graph-inspect --workspace "$rws" --config "$cfg" --json)
  modules=$(echo "$inspect" | field 'd["nodes"].get("module", 0)')
  [ "$modules" -gt 0 ] && ok "$name: graph-inspect reads $modules modules" || fail "$name: graph-inspect found no modules"
done

# graph show and graph query against the server (the stdlib copy: json.loads calls JSONDecoder.decode).
cfg=$TMP/t_stdlib.yaml; rws=$TMP/ws-remote-stdlib; ews=$TMP/ws-embedded-stdlib
if "$BIN" graph show json.loads --workspace "$rws" --config "$cfg" --json > "$TMP/show.json" \
  && grep -q 'JSONDecoder.decode' "$TMP/show.json"; then ok "graph show json.loads: calls json.decoder.JSONDecoder.decode"
else fail "graph show json.loads against the server"; fi
callers=$("$BIN" graph query "SELECT VALUE qname FROM \`function\` WHERE ->calls->function.qname CONTAINS 'json.decoder.JSONDecoder.decode'" \
  --workspace "$rws" --config "$cfg" | field 'sorted(d[0])') || callers="(query failed)"
echo "$callers" | grep -q "json.loads" && ok "graph query: callers of JSONDecoder.decode: $callers" \
  || fail "graph query: callers of JSONDecoder.decode: $callers"

# A reply above the SDK's default limit of 64 MiB (whole tables of a large graph are: the full standard library's
# `function` table is about 90 MB) reads back instead of resetting the connection.
bytes=$("$BIN" graph query "RETURN array::repeat(string::repeat('x', 1000000), 80)" --workspace "$rws" --config "$cfg" | wc -c)
[ "$bytes" -gt 80000000 ] && ok "an 80 MB reply reads back ($bytes bytes)" || fail "an 80 MB reply: $bytes bytes read"

# An edit: the second run parses one file, and the graph equals the embedded store's of the edited input.
printf '\n\ndef added_by_the_remote_test(s):\n    return loads(s)\n' >> "$TMP/stdlib/json/__init__.py"
"$BIN" extract "$TMP/stdlib" --workspace "$rws" --config "$cfg" --json > "$TMP/extract.json"
"$BIN" extract "$TMP/stdlib" --workspace "$ews" --json > /dev/null
read -r parsed mode < <(field 'd["report"]["parsed"], d["write"]["mode"]' < "$TMP/extract.json" | tr -d '(),'"'")
[ "$parsed" = 1 ] && ok "incremental: $parsed file re-parsed ($mode write)" || fail "incremental: $parsed files re-parsed ($mode write)"
same "stdlib after an edit" "$rws" "$cfg" "$ews"
"$BIN" extract "$TMP/stdlib" --workspace "$rws" --config "$cfg" --full --json > /dev/null
same "stdlib after --full" "$rws" "$cfg" "$ews"

# A wrong password: one line naming the server, exit status 1, and nothing written.
cfg=$(remote_config t_denied)
if NANODEX_DB_PASS=wrong "$BIN" extract tests/fixtures/java --workspace "$TMP/ws-denied" --config "$cfg" > "$TMP/out" 2> "$TMP/err"; then
  fail "a wrong password was accepted"
else
  lines=$(grep -c . "$TMP/err" || true)
  if [ "$lines" = 1 ] && grep -q "127.0.0.1:$PORT refused the sign-in as .root.*NANODEX_DB_PASS" "$TMP/err"; then
    ok "wrong password: $(cat "$TMP/err")"
  else fail "wrong password: expected one line naming the server and NANODEX_DB_PASS"; cat "$TMP/err"; fi
fi

# The writer lease of a namespace (graph/lease.rs). sql NS QUERY: runs SurrealQL in the namespace's meta database
# through the server's HTTP endpoint, printing the JSON reply.
sql() {
  curl -sS -u "root:$PASS" -H 'Accept: application/json' -H "surreal-ns: $1" -H 'surreal-db: meta' \
    --data-binary "$2" "http://127.0.0.1:$PORT/sql"
}
# lease NS: the lease record's owner, host and pid ("none" when there is none); current NS: the current graph's
# database ("none" when there is none).
lease() { sql "$1" 'SELECT * FROM ONLY writer:lease' | field 'd[-1]["result"] and "%(owner)s %(host)s %(pid)s" % d[-1]["result"] or "none"'; }
current() { sql "$1" 'SELECT VALUE db FROM ONLY state:current' | field 'd[-1]["result"] or "none"'; }
# plant NS HOST PID AGE [BOOT]: a lease record of another writer, renewed AGE ago (a SurrealQL duration), on a
# machine with kernel boot id BOOT.
plant() {
  sql "$1" "DEFINE TABLE IF NOT EXISTS writer SCHEMALESS; UPSERT writer:lease CONTENT { owner: 'planted', host: '$2', boot: '${5:-}', pid: $3, workspace: '/srv/other-ws', acquired: time::now() - $4, renewed: time::now() - $4 }" > /dev/null
}
cfg=$(remote_config t_lease); rws=$TMP/ws-lease
sql t_lease 'DEFINE NAMESPACE IF NOT EXISTS t_lease; USE NS t_lease; DEFINE DATABASE IF NOT EXISTS meta' > /dev/null
# A live writer elsewhere holds it: refused in one line naming it, and nothing is made current.
plant t_lease build-box-7 4242 10s
if "$BIN" extract tests/fixtures/java --workspace "$rws" --config "$cfg" > "$TMP/out" 2> "$TMP/err"; then
  fail "lease: a write went through another writer's fresh lease"
elif [ "$(grep -c . "$TMP/err")" = 1 ] && grep -q "being written by pid 4242 on build-box-7 (workspace /srv/other-ws" "$TMP/err" \
  && [ "$(current t_lease)" = none ]; then ok "lease held elsewhere: $(cat "$TMP/err")"
else fail "lease held elsewhere: expected one line naming build-box-7, pid 4242 and its workspace"; cat "$TMP/err"; fi
# The same lease, not renewed for 5 minutes: taken over, and released when the run ends.
plant t_lease build-box-7 4242 5m
if "$BIN" extract tests/fixtures/java --workspace "$rws" --config "$cfg" > /dev/null 2> "$TMP/err" \
  && [ "$(current t_lease)" != none ] && [ "$(lease t_lease)" = none ]; then ok "stale lease: taken over, and released after the run"
else fail "stale lease: not taken over or not released ($(lease t_lease))"; cat "$TMP/err"; fi
# A fresh lease of a process of this host that has exited (a killed run): taken over at once.
sh -c 'exit 0' & dead=$!; wait $dead
plant t_lease "$(hostname)" "$dead" 1s "$(cat /proc/sys/kernel/random/boot_id)"
"$BIN" extract tests/fixtures/java --workspace "$rws" --config "$cfg" --full > /dev/null 2> "$TMP/err" \
  && ok "lease of an exited process of this host: taken over at once" \
  || { fail "lease of an exited process of this host was not taken over"; cat "$TMP/err"; }
# Real writers, on a larger copy of the standard library (11 packages, about 200 files): the polls below catch
# each writer while it holds the lease, and while it writes its new graph database.
mkdir -p "$TMP/big"
for pkg in json email http asyncio xml unittest importlib concurrent logging multiprocessing urllib; do cp -r "$STDLIB/$pkg" "$TMP/big/"; done
"$BIN" extract "$TMP/big" --workspace "$TMP/ws-embedded-big" > /dev/null; ews=$TMP/ws-embedded-big
# wait_for CHECK NS: polls CHECK (a function) for up to 20 s.
wait_for() { for _ in $(seq 400); do "$1" "$2" && return 0; sleep 0.05; done; return 1; }
leased() { [ "$(lease "$1")" != none ]; }
# writing NS: a graph database other than the current one exists (a full build is loading it).
writing() {
  local cur; cur=$(current "$1")
  sql "$1" 'INFO FOR NS' | CUR=$cur python3 -c '
import json, os, sys
dbs = json.load(sys.stdin)[-1]["result"]["databases"]
sys.exit(0 if any(d.startswith("g") and d != os.environ["CUR"] for d in dbs) else 1)'
}
# Two writers from two workspaces: while one writes, the other is refused, naming its pid.
"$BIN" extract "$TMP/big" --workspace "$rws" --config "$cfg" --full > /dev/null 2> "$TMP/err-a" & writer=$!
if wait_for leased t_lease; then
  if "$BIN" extract "$TMP/big" --workspace "$TMP/ws-lease-b" --config "$cfg" --full > /dev/null 2> "$TMP/err-b"; then
    fail "two writers: the second one was let in"
  elif grep -q "being written by pid $writer on $(hostname)" "$TMP/err-b"; then ok "two writers: the second is refused: $(cat "$TMP/err-b")"
  else fail "two writers: unexpected error"; cat "$TMP/err-b"; fi
else fail "two writers: the first writer's lease never appeared"; fi
wait $writer && ok "two writers: the first one finished" || { fail "two writers: the first one failed"; cat "$TMP/err-a"; }
same "after two writers" "$rws" "$cfg" "$ews"
# kill -9 of a writer while it loads its new graph database: the next run, from another workspace on this host,
# takes over the lease at once and completes the graph.
"$BIN" extract "$TMP/big" --workspace "$rws" --config "$cfg" --full > /dev/null 2>&1 & writer=$!
if wait_for writing t_lease; then
  kill -9 $writer; wait $writer 2>/dev/null || true
  before=$(lease t_lease)
  if [ "$before" = none ]; then fail "kill -9: the killed writer left no lease"
  elif "$BIN" extract "$TMP/big" --workspace "$TMP/ws-lease-c" --config "$cfg" > /dev/null 2> "$TMP/err"; then
    ok "kill -9 while loading left its lease ($before); the next writer took over at once"
    same "after kill -9 and a takeover" "$TMP/ws-lease-c" "$cfg" "$ews"
  else fail "after kill -9 the next writer was refused"; cat "$TMP/err"; fi
else fail "kill -9: never saw the writer loading its graph"; wait $writer || true; fi
# A writer whose lease was taken from it (here: rewritten under it) does not switch to its graph.
before=$(current t_lease)
"$BIN" extract "$TMP/big" --workspace "$rws" --config "$cfg" --full > /dev/null 2> "$TMP/err" & writer=$!
wait_for leased t_lease && plant t_lease build-box-7 4242 0s
if wait $writer; then fail "a writer that lost its lease still finished"
elif grep -q "lost the writer lease" "$TMP/err" && [ "$(current t_lease)" = "$before" ]; then
  ok "lost lease: the writer stopped without switching ($(cat "$TMP/err"))"
else fail "lost lease: unexpected outcome (current $(current t_lease), was $before)"; cat "$TMP/err"; fi

if [ "$FAILED" = 0 ]; then echo "remote store: all checks passed"; else echo "remote store: FAILED"; exit 1; fi
