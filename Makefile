# rssl build: the Rust engine as a C library and as an Erlang NIF, the rebar3
# app, and the C tests. `make` builds everything, `make test` runs every suite.

CARGO      ?= cargo
REBAR3     ?= rebar3
BUILD      := build
LIBDIR     := $(BUILD)/lib
NIF_SO     := erlang/priv/rssl_nif.so
ERL_EBIN   := erlang/_build/default/lib/rssl/ebin

.PHONY: all lib nif erlang c test test-rust test-c test-erlang demo bench header clean

all: lib nif erlang c

# The NIF and the C library come from the same crate with different features;
# both builds share target/ so only the rssl crate itself is compiled twice.
nif:
	$(CARGO) build --release --features nif
	mkdir -p erlang/priv
	cp target/release/librssl.so $(NIF_SO).tmp && mv $(NIF_SO).tmp $(NIF_SO)

lib: nif
	$(CARGO) build --release
	mkdir -p $(LIBDIR)
	cp target/release/librssl.so target/release/librssl.a $(LIBDIR)/

erlang: nif
	cd erlang && $(REBAR3) compile

c: lib
	cmake -S c_tests -B $(BUILD)/c_tests -DRSSL_LIBDIR=$(abspath $(LIBDIR)) -DRSSL_INCLUDE=$(abspath include) >/dev/null
	cmake --build $(BUILD)/c_tests

test: all test-rust test-c test-erlang

test-rust:
	$(CARGO) test

test-c: c
	ctest --test-dir $(BUILD)/c_tests --output-on-failure

test-erlang: nif
	cd erlang && $(REBAR3) ct

demo: all
	erl -noshell -pa $(ERL_EBIN) -eval 'rssl_demo:run(), halt().'

# ssl vs rssl vs gen_tcp; RSSL_BENCH_MB, RSSL_BENCH_HS_SECS, RSSL_BENCH_MODS.
bench: erlang
	mkdir -p $(BUILD)/bench
	erlc -o $(BUILD)/bench bench/rssl_bench.erl
	erl -noshell -pa $(ERL_EBIN) -pa $(BUILD)/bench -eval 'rssl_bench:run(), halt().'

# Regenerates the committed C header (a cargo test fails while it is stale).
header:
	RSSL_BLESS_HEADER=1 $(CARGO) test --test header

clean:
	$(CARGO) clean
	rm -rf $(BUILD) erlang/_build $(NIF_SO)
