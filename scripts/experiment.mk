# SPDX-License-Identifier: Apache-2.0
# A complete snapkit experiment as a Makefile, on a host process (no VM needed, seconds):
#   image -> record it under two inputs -> merge + split -> place -> restore under every
#   strategy, each input's loading set replayed and every touched page verified -> results
#   table (CSV and JSON) -> plot (SVG, gnuplot).
# Run from the top of a clone:   make -f scripts/experiment.mk        (-j2 works the same)
#   make -f scripts/experiment.mk clean        removes $(OUT)
# The inputs are the files in $(E)/ (one line of arguments each): image.args (mkimage),
# input-NAME.args (rwload: the function's input NAME), split.args (snap-split), place.args
# (snap-place). Touching one reruns only what depends on it; a second make does nothing.
# If $(BIN) lacks the tools they are built first, by scripts/setup.sh (the project's build).
#
# Never half a file: every artifact and report is written by the tools' atomic -o/--report
# (temp + fsync + rename), the image and the replay results through a temporary renamed into
# place, and .DELETE_ON_ERROR drops a target whose recipe failed.
#
# Unchanged outputs: snapkit leaves an output untouched (same inode, same mtime) when the new
# bytes equal the old (snapkit(7), Outputs). For the steps whose output can come out the same
# (image, split, placed) make must then not rerun what depends on them. The stamp idiom: the
# step's recipe belongs to a stamp file (.NAME.stamp: "the step ran on these inputs"), and the
# output depends on the stamp through a rule that only re-creates a missing output (test -f);
# make reads the output's mtime again after that rule, so what depends on the output reruns
# only when the tool really wrote a new file. The stamp takes the output's mtime when the step
# wrote it (then nothing is pending afterwards), the time of the run when the step left it as it
# was (then the test -f rule runs on later makes, silently: no tool runs, nothing is rewritten,
# and `make -q` still exits 0, since a recipe line naming $(MAKE) is run even under -q and -n).

E ?= scripts/experiment
BUILD ?= build
BIN ?= $(BUILD)/bin
OUT ?= $(BUILD)/experiment
INPUTS ?= a b
STRATEGIES ?= vanilla reap faasnap tiered
GNUPLOT ?= gnuplot

.DELETE_ON_ERROR:
.SUFFIXES:
.PHONY: all clean tools
all: $(OUT)/results.csv $(OUT)/results.json $(OUT)/results.svg

# The tools, built once by the project's own set-up (installs Debian packages, cmake build)
# when missing. Order-only below: rebuilding the tools does not rerun the experiment.
TOOLS := $(addprefix $(BIN)/,snap-record snap-split snap-place snap-restore snap-stat mkimage rwload replay) \
         $(BIN)/../lib/libsnaprestore.so
tools: $(TOOLS)
$(TOOLS) &:
	SNAPKIT_BUILD=$(abspath $(BUILD)) scripts/setup.sh

$(OUT)/.dir:
	mkdir -p -m 700 $(OUT) $(OUT)/runs $(OUT)/tiers $(OUT)/tiers/dram $(OUT)/tiers/cxl $(OUT)/tiers/ssd
	touch $@

# stamped OUTPUT: the output of a stamped step (see the top); a missing output reruns its step
# (under make -n, which runs this line too, it only says so).
define stamped
$(1): $(dir $(1)).$(notdir $(1)).stamp
	@test -f $$@ || $$(if $$(findstring n,$$(firstword -$$(MAKEFLAGS))),echo "$$@ is missing: its step reruns",{ rm -f $$<; $$(MAKE) -f $$(firstword $$(MAKEFILE_LIST)) $$<; })
endef
# $(call stamp_done,OUTPUT), last line of a stamped step: the output written now (newer than the
# previous stamp, or no stamp yet): the stamp gets its mtime; left as it was: the time now.
stamp_done = if [ -e $@ ] && ! [ $(1) -nt $@ ]; then touch $@; else touch -r $(1) $@; fi

# --- the image: a stand-in snapshot (zero pages and random ones), from image.args --------------
$(eval $(call stamped,$(OUT)/image.mem))
$(OUT)/.image.mem.stamp: $(E)/image.args | $(TOOLS) $(OUT)/.dir
	$(BIN)/mkimage $(OUT)/image.mem.tmp $$(cat $<)
	chmod 600 $(OUT)/image.mem.tmp
	if cmp -s $(OUT)/image.mem.tmp $(OUT)/image.mem; then rm -f $(OUT)/image.mem.tmp; \
	else mv -f $(OUT)/image.mem.tmp $(OUT)/image.mem; fi
	$(call stamp_done,$(OUT)/image.mem)

# --- record: the function (rwload: maps the image privately, as a VMM does) run with each input,
# its loading set recorded by page-table scan at its exit (one scan: the order is by address,
# so a rerun of the same input gives the same pages). The scan also sees the neighbours that
# fault-around mapped, which are the pages of the page cache (and not being faulted in by
# another process at that moment): so the image is read into the cache first, and one
# recording runs at a time, also under -j; otherwise a rerun can see a few pages fewer ------
$(OUT)/%.ls: $(E)/input-%.args $(OUT)/image.mem | $(TOOLS) $(OUT)/.dir
	flock $(OUT)/.record.lock sh -c 'cat "$$1" > /dev/null && shift && exec "$$@"' record $(OUT)/image.mem \
	  $(BIN)/snap-record -q --method pagemap --interval 0 --rss-trigger 0 \
	  --mem $(OUT)/image.mem -o $@ -- $(BIN)/rwload $(OUT)/image.mem $$(cat $<)

LOADSETS := $(foreach i,$(INPUTS),$(OUT)/$(i).ls)

# --- merge the inputs' loading sets and split: every page classed ZERO/RO/RW/COLD ---------------
$(eval $(call stamped,$(OUT)/fn.split))
$(OUT)/.fn.split.stamp: $(OUT)/image.mem $(LOADSETS) $(E)/split.args | $(TOOLS)
	$(BIN)/snap-split -q --mem $(OUT)/image.mem $$(cat $(E)/split.args) -o $(OUT)/fn.split \
	  --report $(OUT)/fn.split.json $(LOADSETS)
	$(call stamp_done,$(OUT)/fn.split)

# --- place: RW in DRAM (staged), RO on a byte-addressable tier, COLD on "SSD" -------------------
# CXL: the RO tier's directory (dax:); on tmpfs (e.g. CXL=/dev/shm/snapkit-exp) tiered maps the
# RO layout file with one mapping, elsewhere it lays one mapping per run (snap-restore(1)).
T := $(abspath $(OUT))/tiers
CXL ?= $(T)/cxl
$(eval $(call stamped,$(OUT)/fn.placed))
$(OUT)/.fn.placed.stamp: $(OUT)/fn.split $(E)/place.args | $(TOOLS)
	mkdir -p -m 700 $(CXL)
	$(BIN)/snap-place $(OUT)/fn.split -o $(OUT)/fn.placed --staging $(T)/dram \
	  --tier rw=dram --tier ro=dax:$(CXL) --tier cold=file:$(T)/ssd $$(cat $(E)/place.args) \
	  --json --report $(OUT)/fn.placed.json
	$(call stamp_done,$(OUT)/fn.placed)

# --- restore under every strategy, each input's loading set replayed by a host process mapping
# the image as a VMM does; replay --verify checks every touched page (exit 1 on a wrong byte) ---
# runs/STRATEGY-INPUT.json: the replay's figures; .restore.json beside it: snap-restore's report.
define restore_rule
$(OUT)/runs/$(1)-$(2).json: $(OUT)/fn.placed $(OUT)/$(2).ls $(OUT)/image.mem | $(TOOLS)
	$(BIN)/snap-restore $(OUT)/fn.placed --strategy $(1) --image $(OUT)/image.mem -q --json \
	  -o $(OUT)/runs/$(1)-$(2).restore.json --exec -- \
	  $(BIN)/replay $(OUT)/image.mem $(OUT)/$(2).ls --verify -o $$@.tmp
	mv -f $$@.tmp $$@
endef
$(foreach s,$(STRATEGIES),$(foreach i,$(INPUTS),$(eval $(call restore_rule,$(s),$(i)))))
RUNS := $(foreach s,$(STRATEGIES),$(foreach i,$(INPUTS),$(OUT)/runs/$(s)-$(i).json))

# --- the results table and its plot -------------------------------------------------------------
$(OUT)/results.csv $(OUT)/results.json &: $(E)/table.py $(RUNS) $(OUT)/fn.split $(OUT)/fn.placed $(LOADSETS)
	python3 $(E)/table.py --out $(OUT) --strategies "$(STRATEGIES)" --inputs "$(INPUTS)" \
	  --csv $(OUT)/results.csv --json $(OUT)/results.json

$(OUT)/results.svg: $(E)/plot.gp $(OUT)/results.csv
	$(GNUPLOT) -e "csv='$(OUT)/results.csv'; out='$@.tmp'" $(E)/plot.gp
	mv -f $@.tmp $@

clean:
	rm -rf $(OUT)$(if $(filter $(T)/%,$(CXL)),, $(CXL))
