# edgetrain — top-level build.
#
#   make            install missing Debian packages, build libopenvswitch
#                   once, generate protobuf-c code, build build/bin/*
#   make test       build and run every test; last line "N passed, N failed"
#   make test-faults  the fault scenarios (tests/faults/), same last line
#   make demo       the main job (see README)
#   make bench      benchmarks, side by side with their peers
#   make fuzz       bounded libFuzzer runs
#   make SANITIZE=1 ...   ASan + UBSan build (into build-san/)
#
# Sources are found by directory, so adding a module is adding a file:
#   proto/*.proto   -> generated protobuf-c code   (libet_proto.a)
#   proto/*.c       wire framing                    (libet_proto.a)
#   common/*.c      logging, small shared helpers  (libet_common.a)
#   kernels/*.c     training math                   (libet_kernels.a)
#   train/*.c       datasets and stage training     (libet_train.a)
#   controller/*.c  edgetrain-controller (main.c has main)
#   agent/*.c       edgetrain-agent      (main.c has main)
#   cli/*.c         edgetrain            (main.c has main)
#   tests/unit/test_*.c   one cmocka binary each

SANITIZE ?= 0
CROSS    ?=
ifeq ($(SANITIZE),1)
BUILD    ?= build-san
else
BUILD    ?= build
endif

# V=1 shows full command lines.
V ?= 0
ifeq ($(V),0)
quiet = @printf '  %-6s %s\n' $(1) $(2);
endif

CC       := $(CROSS)gcc
AR       := $(CROSS)ar
PKG      := pkg-config
VERSION  := $(shell cat VERSION 2>/dev/null || echo 0.0.0)

OPT      ?= -O3 -march=native
ifneq ($(CROSS),)
OPT      := -O3
endif
CFLAGS   ?= $(OPT) -g
# -iquote: project headers (train/threads.h) must not shadow system ones (<threads.h>).
CFLAGS   += -std=gnu11 -Wall -Wextra -Wno-unused-parameter -pthread -fopenmp \
            -iquote common -iquote proto -iquote kernels -iquote train -iquote agent -iquote controller -I$(BUILD)/gen \
            -DEDGETRAIN_VERSION='"$(VERSION)"'
LDFLAGS  += -pthread -fopenmp
ifeq ($(SANITIZE),1)
CC       := clang
CFLAGS   := $(filter-out -fopenmp,$(CFLAGS)) -O1 -g -fsanitize=address,undefined \
            -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS  := $(filter-out -fopenmp,$(LDFLAGS)) -fsanitize=address,undefined -fopenmp=libgomp
endif


# --- dependency bootstrap ---------------------------------------------------
# Runs while the Makefile is read, before pkg-config is asked for flags, so
# one `make` on a fresh machine installs the packages and then builds. The
# stamp skips the dpkg queries once everything was found.
ifeq ($(filter clean distclean,$(MAKECMDGOALS)),)
DEPS_STAMP := $(BUILD)/.deps-ok
DEPS_OK := $(shell [ $(DEPS_STAMP) -nt scripts/deps.sh ] && echo yes)
ifneq ($(DEPS_OK),yes)
DEPS_RC := $(shell scripts/deps.sh check >/dev/null 2>&1 || scripts/deps.sh install >&2; echo $$?)
ifneq ($(DEPS_RC),0)
$(error missing Debian packages could not be installed (see above))
endif
$(shell mkdir -p $(BUILD) && touch $(DEPS_STAMP))
endif
endif

DEP_CFLAGS := $(shell $(PKG) --cflags libprotobuf-c libevent libevent_pthreads libcjson zlib libpng 2>/dev/null)
DEP_LIBS   := $(shell $(PKG) --libs libprotobuf-c libevent libevent_pthreads libcjson zlib libpng 2>/dev/null) \
              -lopenblas -lcrypto -lm
CFLAGS += $(DEP_CFLAGS)

# libopenvswitch, built once from Debian's openvswitch-source.
# Shared by the normal and sanitizer builds (it is not instrumented).
OVS_DIR  ?= build/ovs
OVS_LIB  := $(OVS_DIR)/src/lib/.libs/libopenvswitch.a
OVS_CFLAGS = -I$(OVS_DIR)/src/include -I$(OVS_DIR)/src/lib -I$(OVS_DIR)/src
OVS_LIBS   = $(OVS_LIB) $(shell cat $(OVS_DIR)/libs.txt 2>/dev/null)
$(OVS_LIB): 
	@scripts/build-ovs.sh $(OVS_DIR)

# --- protobuf-c code generation ---------------------------------------------
PROTOS    := $(wildcard proto/*.proto)
GEN_C     := $(patsubst proto/%.proto,$(BUILD)/gen/%.pb-c.c,$(PROTOS))
GEN_H     := $(GEN_C:.c=.h)
$(BUILD)/gen/%.pb-c.c $(BUILD)/gen/%.pb-c.h: proto/%.proto 
	@mkdir -p $(@D)
	$(call quiet,PROTOC,$<)protoc-c --proto_path=proto --c_out=$(BUILD)/gen $<

# --- objects and libraries --------------------------------------------------
obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

PROTO_SRC   := $(wildcard proto/*.c)
COMMON_SRC  := $(wildcard common/*.c)
KERNELS_SRC := $(wildcard kernels/*.c)
TRAIN_SRC   := $(wildcard train/*.c)
CTL_SRC     := $(filter-out controller/main.c,$(wildcard controller/*.c))
AGENT_SRC   := $(filter-out agent/main.c,$(wildcard agent/*.c))
CLI_SRC     := $(filter-out cli/main.c,$(wildcard cli/*.c))

LIB_PROTO   := $(BUILD)/lib/libet_proto.a
LIB_COMMON  := $(BUILD)/lib/libet_common.a
LIB_KERNELS := $(BUILD)/lib/libet_kernels.a
LIB_TRAIN   := $(BUILD)/lib/libet_train.a
LIB_CTL     := $(BUILD)/lib/libet_controller.a
LIB_AGENT   := $(BUILD)/lib/libet_agent.a
LIB_CLI     := $(BUILD)/lib/libet_cli.a

# Link order: dependents first.
CORE_LIBS := $(LIB_TRAIN) $(LIB_KERNELS) $(LIB_PROTO) $(LIB_COMMON)

$(BUILD)/obj/$(BUILD)/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(@D)
	$(call quiet,CC,$<)$(CC) $(CFLAGS) -c -o $@ $<

# Controller sources see the libopenvswitch headers; nothing else does.
$(BUILD)/obj/controller/%.o: controller/%.c $(GEN_H) $(OVS_LIB)
	@mkdir -p $(@D)
	$(call quiet,CC,$<)$(CC) $(CFLAGS) $(OVS_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/obj/%.o: %.c $(GEN_H) 
	@mkdir -p $(@D)
	$(call quiet,CC,$<)$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

define mklib
$(1): $(2)
	@mkdir -p $$(@D)
	@rm -f $$@
	$$(call quiet,AR,$$@)$$(AR) rcs $$@ $$^
endef
$(eval $(call mklib,$(LIB_PROTO),$(call obj,$(GEN_C) $(PROTO_SRC))))
$(eval $(call mklib,$(LIB_COMMON),$(call obj,$(COMMON_SRC))))
$(eval $(call mklib,$(LIB_KERNELS),$(call obj,$(KERNELS_SRC))))
$(eval $(call mklib,$(LIB_TRAIN),$(call obj,$(TRAIN_SRC))))
$(eval $(call mklib,$(LIB_CTL),$(call obj,$(CTL_SRC))))
$(eval $(call mklib,$(LIB_AGENT),$(call obj,$(AGENT_SRC))))
$(eval $(call mklib,$(LIB_CLI),$(call obj,$(CLI_SRC))))

# --- binaries ----------------------------------------------------------------
BIN := $(BUILD)/bin
BINS := $(BIN)/edgetrain $(BIN)/edgetrain-agent $(BIN)/edgetrain-controller

$(BIN)/edgetrain-controller: $(call obj,controller/main.c) $(LIB_CTL) $(CORE_LIBS) $(OVS_LIB)
	@mkdir -p $(@D)
	$(call quiet,LD,$@)$(CC) -o $@ $(call obj,controller/main.c) $(LIB_CTL) $(CORE_LIBS) $(OVS_LIBS) $(DEP_LIBS) $(LDFLAGS) -ldl

$(BIN)/edgetrain-agent: $(call obj,agent/main.c) $(LIB_AGENT) $(CORE_LIBS)
	@mkdir -p $(@D)
	$(call quiet,LD,$@)$(CC) -o $@ $(call obj,agent/main.c) $(LIB_AGENT) $(CORE_LIBS) $(DEP_LIBS) $(LDFLAGS)

# The CLI links the controller and agent libraries too (bench-plan,
# bench-flows, bench-stream reuse their code).
$(BIN)/edgetrain: $(call obj,cli/main.c) $(LIB_CLI) $(LIB_CTL) $(LIB_AGENT) $(CORE_LIBS) $(OVS_LIB)
	@mkdir -p $(@D)
	$(call quiet,LD,$@)$(CC) -o $@ $(call obj,cli/main.c) $(LIB_CLI) $(LIB_CTL) $(LIB_AGENT) $(CORE_LIBS) $(OVS_LIBS) $(DEP_LIBS) $(LDFLAGS) -ldl

.SECONDARY:
.DEFAULT_GOAL := all
.PHONY: all
all: $(BINS)

# --- tests -------------------------------------------------------------------
TEST_SRC  := $(wildcard tests/unit/test_*.c)
TEST_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(TEST_SRC))
TEST_LIBS := $(LIB_CLI) $(LIB_CTL) $(LIB_AGENT) $(CORE_LIBS)

$(BUILD)/obj/tests/unit/%.o: tests/unit/%.c $(GEN_H) $(OVS_LIB)
	@mkdir -p $(@D)
	$(call quiet,CC,$<)$(CC) $(CFLAGS) $(OVS_CFLAGS) -Itests/unit -MMD -MP -c -o $@ $<

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(TEST_LIBS) $(OVS_LIB)
	@mkdir -p $(@D)
	$(call quiet,LD,$@)$(CC) -o $@ $< $(TEST_LIBS) $(OVS_LIBS) $(DEP_LIBS) -lcmocka $(LDFLAGS) -ldl

# Test drivers: small programs that integration tests run against real
# daemons (tests/drivers/NAME.c -> $(BUILD)/tests/drivers/NAME).
DRIVER_SRC  := $(wildcard tests/drivers/*.c)
DRIVER_BINS := $(patsubst tests/drivers/%.c,$(BUILD)/tests/drivers/%,$(DRIVER_SRC))
$(BUILD)/obj/tests/drivers/%.o: tests/drivers/%.c $(GEN_H) $(OVS_LIB)
	@mkdir -p $(@D)
	$(call quiet,CC,$<)$(CC) $(CFLAGS) $(OVS_CFLAGS) -MMD -MP -c -o $@ $<
$(BUILD)/tests/drivers/%: $(BUILD)/obj/tests/drivers/%.o $(TEST_LIBS) $(OVS_LIB)
	@mkdir -p $(@D)
	$(call quiet,LD,$@)$(CC) -o $@ $< $(TEST_LIBS) $(OVS_LIBS) $(DEP_LIBS) $(LDFLAGS) -ldl

.PHONY: test tests
tests: $(BINS) $(TEST_BINS) $(DRIVER_BINS)
test: tests
	@BUILD=$(BUILD) SANITIZE_REPORTS=$(filter 1,$(SANITIZE)) scripts/run-tests.sh

# Fault scenarios (tests/faults/*.sh, on the emulator with real OVS): agent
# killed and back, link down under multipath, controller and switch
# restarts. Same closing line as `make test`.
.PHONY: test-faults
test-faults: tests
	@BUILD=$(BUILD) SUITE=faults SANITIZE_REPORTS=$(filter 1,$(SANITIZE)) scripts/run-tests.sh

# --- fuzzing (clang libFuzzer + ASan/UBSan) --------------------------------
FUZZ_SRC  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,build-fuzz/%,$(FUZZ_SRC))
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS = -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -std=gnu11 -pthread \
              -Icommon -Iproto -Ikernels -Itrain -Iagent -Icontroller -Ibuild-fuzz/gen $(DEP_CFLAGS) \
              -DEDGETRAIN_VERSION='"$(VERSION)"'
build-fuzz/gen/%.pb-c.c: proto/%.proto 
	@mkdir -p $(@D)
	protoc-c --proto_path=proto --c_out=build-fuzz/gen $<
FUZZ_GEN := $(patsubst proto/%.proto,build-fuzz/gen/%.pb-c.c,$(PROTOS))
build-fuzz/%: tests/fuzz/%.c $(FUZZ_GEN) $(PROTO_SRC) $(COMMON_SRC) $(KERNELS_SRC) $(TRAIN_SRC) $(CTL_SRC) $(AGENT_SRC)
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) $$(sed -n 's,.*fuzz-sources: *\([^*]*\).*,\1,p' $<) $(FUZZ_GEN) -o $@ $< \
	    $(DEP_LIBS) -fopenmp=libgomp
.PHONY: fuzz
fuzz: $(FUZZ_BINS)
	@for f in $(FUZZ_BINS); do \
	    n=$$(basename $$f); mkdir -p tests/fuzz/corpus/$$n build-fuzz/findings/$$n build-fuzz/corpus-$$n; \
	    echo "fuzz: $$n for $(FUZZ_SECONDS)s"; \
	    $$f -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=build-fuzz/findings/$$n/ \
	        build-fuzz/corpus-$$n tests/fuzz/corpus/$$n 2>build-fuzz/$$n.log || { tail -n 40 build-fuzz/$$n.log; exit 1; }; \
	    tail -n 1 build-fuzz/$$n.log; \
	done

# --- benchmarks and demo --------------------------------------------------
.PHONY: bench bench-wire bench-flows
bench-wire: $(BIN)/edgetrain
	$(BIN)/edgetrain bench-wire --size-mb 16 --iters 20
# Flow installation vs ovs-ofctl --bundle (private OVS; skips without root).
bench-flows: $(BIN)/edgetrain
	sh tests/bench/flows.sh $(BIN)/edgetrain
bench: bench-wire bench-flows
	@if [ -x tests/bench/run.sh ]; then tests/bench/run.sh $(BIN)/edgetrain; fi

.PHONY: demo
demo: $(BINS)
	@scripts/demo.sh $(BUILD)

.PHONY: clean distclean
clean:
	rm -rf $(BUILD)/obj $(BUILD)/lib $(BUILD)/bin $(BUILD)/tests $(BUILD)/gen build-fuzz
distclean:
	rm -rf build build-san build-fuzz

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# --- agent: activation-stream benchmark (beside iperf3) --------------------
.PHONY: bench-stream bench-pipeline bench-multipath
bench-stream: $(BIN)/edgetrain
	tests/bench/stream.sh $(BIN)/edgetrain
bench-pipeline: $(BINS)
	tests/bench/pipeline.sh $(BUILD)
bench-multipath: $(BIN)/edgetrain
	tests/bench/multipath.sh $(BIN)/edgetrain
bench: bench-stream bench-pipeline bench-multipath

# --- controller policy plugins (controller branch) -------------------------
# controller/plugins/*.c -> $(BUILD)/plugins/*.so, loaded with --plugin.
PLUGIN_SRC := $(wildcard controller/plugins/*.c)
PLUGINS    := $(patsubst controller/plugins/%.c,$(BUILD)/plugins/%.so,$(PLUGIN_SRC))
$(BUILD)/plugins/%.so: controller/plugins/%.c controller/policy.h controller/paths.h \
                       controller/placement.h controller/blockcost.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -fPIC -shared -o $@ $<
all: $(PLUGINS)
tests: $(PLUGINS)
# Placement + routing time on a 1000-switch network (goal < 100 ms).
.PHONY: bench-plan
bench-plan: $(BIN)/edgetrain
	$(BIN)/edgetrain bench-plan --switches 1000 --links 5000 --agents 64
bench: bench-plan

# --- arm64 cross build of the kernels and their tests -----------------------
# `make CROSS=aarch64-linux-gnu-` builds kernels/ and tests/unit/test_kernels*
# for arm64 into build-aarch64/ (Debian's gcc-aarch64-linux-gnu and the arm64
# multiarch libopenblas-dev, libcmocka-dev, zlib1g-dev: scripts/cross-deps.sh);
# `make cross-test CROSS=aarch64-linux-gnu-` also runs them under qemu-aarch64.
CROSS_BUILD := build-$(patsubst %-,%,$(firstword $(subst -, ,$(CROSS))))
CROSS_CFLAGS = $(OPT) -g -std=gnu11 -Wall -Wextra -Wno-unused-parameter \
               -fopenmp -Icommon -Ikernels -Itests/unit
CROSS_KOBJ := $(patsubst kernels/%.c,$(CROSS_BUILD)/obj/kernels/%.o,$(KERNELS_SRC))
CROSS_TESTS := $(patsubst tests/unit/%.c,$(CROSS_BUILD)/tests/%,$(wildcard tests/unit/test_kernels*.c))
ifneq ($(CROSS),)
.DEFAULT_GOAL := cross-kernels
endif
$(CROSS_BUILD)/obj/kernels/%.o: kernels/%.c $(wildcard kernels/*.h)
	@mkdir -p $(@D)
	$(CC) $(CROSS_CFLAGS) -c -o $@ $<
$(CROSS_BUILD)/lib/libet_kernels.a: $(CROSS_KOBJ)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^
$(CROSS_BUILD)/tests/%: tests/unit/%.c $(CROSS_BUILD)/lib/libet_kernels.a $(wildcard tests/unit/*.h)
	@mkdir -p $(@D)
	$(CC) $(CROSS_CFLAGS) -o $@ $< $(CROSS_BUILD)/lib/libet_kernels.a \
	    -lcmocka -lopenblas -lz -lm -fopenmp
.PHONY: cross-kernels cross-test
cross-kernels: $(CROSS_BUILD)/lib/libet_kernels.a $(CROSS_TESTS)
	@test -n "$(CROSS)" || { echo "cross-kernels: set CROSS=aarch64-linux-gnu-"; exit 2; }
	@file $(CROSS_TESTS) | sed 's/, BuildID.*//'
cross-test: cross-kernels
	@p=0; f=0; for t in $(CROSS_TESTS); do \
	    n=$$(basename $$t); log=$(CROSS_BUILD)/$$n.log; \
	    CMOCKA_MESSAGE_OUTPUT=stdout qemu-aarch64 $$t >$$log 2>&1; rc=$$?; \
	    tp=$$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' $$log); \
	    tf=$$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' $$log); \
	    [ $$rc -ne 0 ] && [ -z "$$tf" ] && tf=1; \
	    echo "qemu-aarch64 $$n: $${tp:-0} passed, $${tf:-0} failed"; \
	    p=$$((p + $${tp:-0})); f=$$((f + $${tf:-0})); done; \
	    echo "$$p passed, $$f failed"; [ $$f -eq 0 ]

# --- emulation: multipath goodput on the emulated diamond (root) -----------
# Through the real controller's pinned paths and OVS (multipath.sh measures
# the stream layer alone over policy-routed links).
.PHONY: bench-multipath-emu
bench-multipath-emu: $(BINS)
	tests/bench/multipath_emulated.sh $(BIN)
.PHONY: bench-scaling-emu
bench-scaling-emu: $(BINS)
	tests/bench/scaling_emulated.sh $(BIN) 100 0.25

# --- experiments (experiments branch) ----------------------------------------
# The small matrix on the emulator (root + openvswitch-switch; about 12 min on
# 2 cores): regenerates docs/results.md and its plots in docs/results/.
# EXPERIMENT_SPEC=tests/experiments/full.json for the bigger one.
EXPERIMENT_SPEC ?= tests/experiments/small.json
.PHONY: experiments
experiments: $(BINS)
	/usr/bin/python3 tests/experiments/run.py --spec $(EXPERIMENT_SPEC) \
	    --bin $(BIN) --report --results-md docs/results.md --figures docs/results

# --- controller: embedded dashboard (dashboard branch) --------------------
# controller/web/dashboard.html -> C array (xxd -i) linked into the
# controller library, served at GET / by controller/dashboard.c.
$(BUILD)/gen/dashboard_html.c: controller/web/dashboard.html
	@mkdir -p $(@D)
	$(call quiet,XXD,$<)(cd controller/web && xxd -i dashboard.html) >$@
$(LIB_CTL): $(call obj,$(BUILD)/gen/dashboard_html.c)

# --- hardening: fuzz targets replayed without libFuzzer ----------------------
# $(BUILD)/fuzz-replay/fuzz_X = tests/fuzz/fuzz_X.c + replay_main.c, built
# with the normal (or SANITIZE=1) flags; tests/integration/fuzz_replay.sh runs
# them over the committed corpora and reproducers.
REPLAY_BINS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz-replay/%,$(FUZZ_SRC))
$(BUILD)/fuzz-replay/%: tests/fuzz/%.c tests/fuzz/replay_main.c $(TEST_LIBS) $(OVS_LIB)
	@mkdir -p $(@D)
	$(call quiet,LD,$@)$(CC) $(CFLAGS) -Wno-unused-function -o $@ $< tests/fuzz/replay_main.c \
	    $(TEST_LIBS) $(OVS_LIBS) $(DEP_LIBS) $(LDFLAGS) -ldl
tests: $(REPLAY_BINS)
# Flow updates with and without 64 simulated agents (private OVS; root).
.PHONY: bench-agents
bench-agents: $(BIN)/edgetrain
	sh tests/bench/agents.sh $(BIN)/edgetrain
