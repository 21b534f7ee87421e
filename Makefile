# rssl build: the Rust engine as a C library and as an Erlang NIF, the rebar3
# app, and the C tests. `make` builds everything, `make test` runs every suite
# (the Erlang ones twice: against rssl and against OTP's ssl).

CARGO      ?= cargo
REBAR3     ?= rebar3
CC         ?= cc
PREFIX     ?= /usr/local
BUILD      := build
LIBDIR     := $(BUILD)/lib
EXDIR      := $(BUILD)/examples
NIF_SO     := erlang/priv/rssl_nif.so
ERL_EBIN   := erlang/_build/default/lib/rssl/ebin
# The C library has its own cargo target directory: the NIF build (another
# feature set) writes target/release/librssl.so too, and either may run first
# or at the same time.
C_TARGET   := target/c
VERSION    := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
EXAMPLES   := client server event_server dtls_echo
EXAMPLE_CFLAGS := -O2 -g -std=c11 -Wall -Wextra -Werror

.PHONY: all lib nif erlang c examples install test test-rust test-c test-c-asan \
	test-install test-erlang test-deps test-elixir-example fuzz-short fuzz-regressions soak demo bench bench-dtls bench-wakeups bench-dist bench-heap-sites header clean

all: lib nif erlang c

# Formatting, clippy (the C library and the NIF feature sets, in release mode
# so the dependencies' build scripts are shared with `make`) and every Erlang
# file compiled with warnings as errors: the suites both ways (?M = rssl and
# ?M = ssl, as `rebar3 as otp_ssl ct` does) and the bench modules, which
# rebar3 does not compile; then dialyzer on erlang/src (the specs must hold)
# and edoc. Well under a minute once built (dialyzer: about 2 minutes the
# first time on a machine, building OTP's PLT into ~/.cache/rebar3; about
# 30 s in a fresh checkout, copying it into _build; then a few seconds);
# `make test` runs it first (the rule below comes before test's own).
.PHONY: check
ERLC_CHECK := $(BUILD)/erlc_check
check:
	$(CARGO) fmt --check
	$(CARGO) clippy --release --all-targets -- -D warnings
	$(CARGO) clippy --release --all-targets --features nif -- -D warnings
	mkdir -p $(ERLC_CHECK)/rssl $(ERLC_CHECK)/ssl
	erlc -Werror -o $(ERLC_CHECK)/rssl erlang/src/*.erl erlang/test/*.erl bench/*.erl
	erlc -Werror -DM=ssl -o $(ERLC_CHECK)/ssl erlang/test/*.erl
	cd erlang && $(REBAR3) dialyzer
	cd erlang && $(REBAR3) edoc

test: check

# Also the build step of rssl as a dependency: erlang/rebar.config (a mix path
# dependency) and the root rebar.config (a rebar3 or mix git dependency, which
# puts the NIF in priv/ at the root) run it from their compile hooks, so it
# says plainly when cargo is missing and honours CARGO_TARGET_DIR.
NIF_TARGET  = $(or $(CARGO_TARGET_DIR),target)
nif:
	@command -v $(CARGO) >/dev/null 2>&1 || { \
	  echo "rssl: cannot build the NIF: '$(CARGO)' not found on PATH." >&2; \
	  echo "rssl: install Rust with rustup (https://rustup.rs) and put ~/.cargo/bin on PATH." >&2; \
	  exit 1; }
	$(CARGO) build --release --features nif
	mkdir -p $(dir $(NIF_SO))
	cp $(NIF_TARGET)/release/librssl.so $(NIF_SO).tmp && mv $(NIF_SO).tmp $(NIF_SO)

lib:
	$(CARGO) build --release --target-dir $(C_TARGET)
	mkdir -p $(LIBDIR)
	cp $(C_TARGET)/release/librssl.so $(C_TARGET)/release/librssl.a $(LIBDIR)/

# The example programs, built the way a user builds against the library.
examples: lib
	mkdir -p $(EXDIR)
	for e in $(EXAMPLES); do \
	  $(CC) $(EXAMPLE_CFLAGS) -Iinclude examples/$$e.c -o $(EXDIR)/$$e \
	    -L$(LIBDIR) -lrssl -lpthread -Wl,-rpath,$(abspath $(LIBDIR)) || exit 1; \
	done

# Installs the libraries, the header and rssl.pc under $(DESTDIR)$(PREFIX).
install: lib
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 755 $(LIBDIR)/librssl.so $(DESTDIR)$(PREFIX)/lib/
	install -m 644 $(LIBDIR)/librssl.a $(DESTDIR)$(PREFIX)/lib/
	install -m 644 include/rssl.h $(DESTDIR)$(PREFIX)/include/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' rssl.pc.in \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/rssl.pc

erlang: nif
	cd erlang && $(REBAR3) compile

c: lib examples
	cmake -S c_tests -B $(BUILD)/c_tests -DRSSL_LIBDIR=$(abspath $(LIBDIR)) \
	  -DRSSL_INCLUDE=$(abspath include) -DRSSL_EXAMPLES=$(abspath $(EXDIR)) >/dev/null
	cmake --build $(BUILD)/c_tests

test: all test-rust test-c test-erlang test-deps test-elixir-example fuzz-short

# In release mode, sharing the dependencies the NIF build compiled.
test-rust:
	$(CARGO) test --release

test-c: c test-install test-c-asan
	ctest --test-dir $(BUILD)/c_tests --output-on-failure -j2

# The C tests built with AddressSanitizer and UBSan (the Rust library itself
# is not instrumented); valgrind runs only in the plain build.
test-c-asan: lib examples
	cmake -S c_tests -B $(BUILD)/c_tests_asan -DRSSL_LIBDIR=$(abspath $(LIBDIR)) \
	  -DRSSL_INCLUDE=$(abspath include) -DRSSL_EXAMPLES=$(abspath $(EXDIR)) \
	  -DRSSL_SANITIZE=ON >/dev/null
	cmake --build $(BUILD)/c_tests_asan
	ctest --test-dir $(BUILD)/c_tests_asan --output-on-failure -j2

# `make install` into a scratch prefix, then a program built with pkg-config
# alone (shared and static) must link and run.
test-install:
	rm -rf $(BUILD)/install
	$(MAKE) --no-print-directory install PREFIX=$(abspath $(BUILD)/install) >/dev/null
	PKG_CONFIG_PATH=$(abspath $(BUILD)/install/lib/pkgconfig) sh -c '\
	  $(CC) $(EXAMPLE_CFLAGS) examples/client.c -o $(BUILD)/install/client \
	    $$(pkg-config --cflags --libs rssl) -Wl,-rpath,$(abspath $(BUILD)/install/lib) && \
	  $(CC) $(EXAMPLE_CFLAGS) examples/client.c -o $(BUILD)/install/client_static \
	    $$(pkg-config --cflags rssl) $(abspath $(BUILD)/install/lib/librssl.a) \
	    $$(pkg-config --static --libs-only-other --libs-only-l rssl | sed "s/-lrssl//")'
	$(BUILD)/install/client 2>/dev/null; test $$? -eq 2
	$(BUILD)/install/client_static 2>/dev/null; test $$? -eq 2
	@echo "install: ok (shared and static, via pkg-config)"

# The suites against rssl, then the same suites with OTP's ssl as the module
# under test: that run shows the expected values are what ssl does.
test-erlang: nif
	cd erlang && $(REBAR3) ct
	cd erlang && $(REBAR3) as otp_ssl ct

# rssl as a dependency of fresh rebar3 and mix projects (a git dependency
# for rebar3, path and git ones for mix), built offline from this checkout,
# each running a TLS echo: tests/deps/run.sh.
test-deps: nif
	REBAR3=$(REBAR3) tests/deps/run.sh

# examples/elixir_echo: its ExUnit tests, with Debian's Elixir and the same
# rebar3 as everything else (MIX_REBAR3, so mix fetches no rebar3 of its own).
ELIXIR_EXAMPLE := examples/elixir_echo
MIX_ENVS       := MIX_REBAR3=$$(command -v $(REBAR3)) HEX_OFFLINE=1
test-elixir-example: nif
	cd $(ELIXIR_EXAMPLE) && $(MIX_ENVS) mix format --check-formatted
	cd $(ELIXIR_EXAMPLE) && $(MIX_ENVS) mix test --warnings-as-errors

# Fuzzing (fuzz/README.md): cargo-fuzz on the stable toolchain, which
# needs RUSTC_BOOTSTRAP=1 for the sanitizer flags. Each target runs for
# FUZZ_SECS seconds from its seeds and what earlier runs kept
# (fuzz/corpus/, not committed); a crash is saved in fuzz/artifacts/ and
# fails the target. Then every saved input is replayed as a cargo test.
FUZZ_TARGETS := engine_server engine_client c_config_builder
FUZZ_SECS    ?= 20
FUZZ         := RUSTC_BOOTSTRAP=1 $(CARGO) fuzz

fuzz-short: fuzz-regressions
	@command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz missing: run .ci/setup" >&2; exit 1; }
	$(FUZZ) build -O
	mkdir -p $(BUILD)/fuzz
	for t in $(FUZZ_TARGETS); do \
	  mkdir -p fuzz/corpus/$$t; \
	  $(FUZZ) run -O $$t fuzz/corpus/$$t fuzz/seeds/$$t -- -max_total_time=$(FUZZ_SECS) \
	    -timeout=10 -print_final_stats=1 > $(BUILD)/fuzz/$$t.log 2>&1; rc=$$?; \
	  echo "fuzz $$t: $$(grep -E '^Done' $(BUILD)/fuzz/$$t.log)"; \
	  if [ $$rc -ne 0 ]; then tail -n 60 $(BUILD)/fuzz/$$t.log; exit 1; fi; \
	done

fuzz-regressions:
	$(CARGO) test --release --manifest-path fuzz/Cargo.toml

# The long run (not part of `make test`): 100,000 mixed connections in the
# faults suite and 10 minutes per fuzz target.
SOAK_CONNS ?= 100000
soak: erlang
	cd erlang && RSSL_CHURN_CONNS=$(SOAK_CONNS) $(REBAR3) ct --suite=test/rssl_faults_SUITE --case=churn
	$(MAKE) --no-print-directory fuzz-short FUZZ_SECS=600

demo: all
	erl -noshell -pa $(ERL_EBIN) -eval 'rssl_demo:run(), halt().'

# ssl vs rssl vs gen_tcp vs OpenSSL alone (bench/rssl_bench*.erl, a fresh VM
# per measurement, bench/c/openssl_hs.c for OpenSSL alone), then the C API
# vs a plain OpenSSL program (bench/c/cbench.c). Smaller runs:
# RSSL_BENCH_MB, _HS_SECS, _HS_CLIENTS, _PP_SECS, _CONNS, _SCALE, _ROUNDS,
# _DGRAM_SECS, _REPEAT, _RUNS (C); RSSL_BENCH_MODS=ssl,rssl,gen_tcp,openssl and
# RSSL_BENCH_ONLY=bulk,hs,hsc,pingpong,memory,scale,cpu,dtls pick modules and
# workloads (pingpong = pp_passive,pp_once,pp_n; dtls = dtls_hs,dtls_dgram);
# RSSL_BENCH_C=0 skips cbench.
bench: erlang lib
	mkdir -p $(BUILD)/bench
	erlc -o $(BUILD)/bench bench/rssl_bench.erl bench/rssl_bench_workloads.erl \
	  bench/rssl_bench_probe.erl
	$(CC) $(EXAMPLE_CFLAGS) bench/c/openssl_hs.c -o $(BUILD)/bench/openssl_hs -lssl -lcrypto -lpthread
	$(CC) $(EXAMPLE_CFLAGS) -Iinclude bench/c/cbench.c -o $(BUILD)/bench/cbench \
	  -L$(LIBDIR) -lrssl -lssl -lcrypto -lpthread -Wl,-rpath,$(abspath $(LIBDIR))
	erl -noshell -pa $(ERL_EBIN) -pa $(BUILD)/bench -eval 'rssl_bench:run(), halt().'
	if [ "$$RSSL_BENCH_C" != 0 ]; then $(BUILD)/bench/cbench; fi

# DTLS only, ssl against rssl in the same run (the DTLS rows of `make bench`):
# sequential DTLS 1.2 handshakes/s and 1 KiB datagrams/s delivered one way.
# RSSL_BENCH_REPEAT=5 RSSL_BENCH_HS_SECS=3 RSSL_BENCH_DGRAM_SECS=3 make bench-dtls
bench-dtls: erlang
	mkdir -p $(BUILD)/bench
	erlc -o $(BUILD)/bench bench/rssl_bench.erl bench/rssl_bench_workloads.erl \
	  bench/rssl_bench_probe.erl
	RSSL_BENCH_ONLY=$${RSSL_BENCH_ONLY:-dtls} RSSL_BENCH_MODS=$${RSSL_BENCH_MODS:-ssl,rssl} erl -noshell -pa $(ERL_EBIN) \
	  -pa $(BUILD)/bench -eval 'rssl_bench:run(), halt().'

# Ping-pong with the VM's context switches per round trip: gen_tcp, OTP's
# socket NIF (enif_select), ssl and rssl (bench/rssl_wakeups.erl).
bench-wakeups: erlang
	mkdir -p $(BUILD)/bench
	erlc -o $(BUILD)/bench bench/rssl_wakeups.erl bench/rssl_bench_workloads.erl
	erl -noshell -pa $(ERL_EBIN) -pa $(BUILD)/bench -eval 'rssl_wakeups:run(), halt().'

# Distribution carriers: inet_tcp, inet_tls and rssl (rssl_dist) between two
# local peer nodes, same run, ratios against inet_tcp (bench/rssl_dist_bench.erl).
# RSSL_BENCH_REPEAT=5 RSSL_BENCH_DIST_MB=64 make bench-dist
bench-dist: erlang
	mkdir -p $(BUILD)/bench
	erlc -o $(BUILD)/bench bench/rssl_dist_bench.erl erlang/test/rssl_test_pki.erl
	epmd -daemon
	erl -noshell -pa $(ERL_EBIN) -pa $(BUILD)/bench -eval 'rssl_dist_bench:run(), halt().'

# Where the memory of idle connections goes: N idle TLS 1.3 pairs in one VM
# with every heap allocation recorded (bench/c/heap_sites.c, LD_PRELOAD), the
# live ones summed per pair by owner (OpenSSL, rssl) and rssl function
# (bench/rssl_heap_sites.erl). RSSL_HEAP_SITES_PAIRS=2000 make bench-heap-sites
HEAP_SITES := $(BUILD)/bench/heap_sites
bench-heap-sites: erlang
	mkdir -p $(HEAP_SITES)
	rm -f $(HEAP_SITES)/*
	$(CC) $(EXAMPLE_CFLAGS) -shared -fPIC bench/c/heap_sites.c -o $(BUILD)/bench/heap_sites.so -ldl -lpthread
	erlc -o $(BUILD)/bench bench/rssl_heap_sites.erl
	HEAP_SITES_DIR=$(abspath $(HEAP_SITES)) LD_PRELOAD=$(abspath $(BUILD)/bench/heap_sites.so) \
	  erl -noshell -pa $(ERL_EBIN) -pa $(BUILD)/bench -eval 'rssl_heap_sites:run(), halt().'

# Regenerates the committed C header (a cargo test fails while it is stale).
header:
	RSSL_BLESS_HEADER=1 $(CARGO) test --test header

clean:
	$(CARGO) clean
	rm -rf $(BUILD) erlang/_build $(NIF_SO) priv _build $(ELIXIR_EXAMPLE)/_build $(ELIXIR_EXAMPLE)/deps
