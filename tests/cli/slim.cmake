# Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#
# cmake -DCLI=<mhaprune> -DCHECKER=<mhaprune_check_pruned> -DPYTHON=<python3 with numpy>
#       -DMASKER=<tests/pycheck/make_masked.py> -DMODEL=<tests/data/tiny-qwen2> -DWORK=<scratch dir>
#       -P slim.cmake
#
# `mhaprune slim` on a masked copy of the bundled tiny Qwen2 (8 heads in 2 key/value groups of 4,
# 4 layers), made by make_masked.py (numpy, no mhaprune code):
#   layer 0: heads 1, 5 zeroed          -> both go (one per group)
#   layer 1: heads 0, 1, 2, 4 zeroed    -> 0 and 4 go; 1 and 2 stay (grouped-query balance)
#   layer 2: every head zeroed          -> 1..7 go (group 1 with its K/V head); 0 stays (a layer keeps one)
#   layer 3: Q rows of head 2 zeroed, O not -> reported, kept
# The output is checked by mhaprune_check_pruned against the masked input (shapes, kept rows
# bit-exact, reference forward == the masked model's forward) and by make_masked.py --verify (the
# removed ids, from config.json); the report JSON says the same. Then: slimming the output again,
# or an unmasked model, writes nothing (exit 5); --tolerance; an existing output without --force,
# an output inside the input, bad options; the input's files are byte-identical at the end.

include("${CMAKE_CURRENT_LIST_DIR}/cli_helpers.cmake")
mhaprune_require(slim.cmake CLI CHECKER PYTHON MASKER MODEL WORK)

file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")

# A failure (exit 1-4) prints one "mhaprune: error:" line; exit 0 and 5 print nothing on stderr
# (progress is off with --quiet).
set(RUN_SILENT_EXITS 0 5)

set(_masked "${WORK}/masked")
set(_mask "0:1,5/1:0,1,2,4/2:0,1,2,3,4,5,6,7")
set(_removed "0:1,5/1:0,4/2:1,2,3,4,5,6,7")
check_command("make_masked.py" "${PYTHON}" "${MASKER}" "${MODEL}" "${_masked}" --heads "${_mask}" --zero-q 3:2)
hash_tree(_masked_before "${_masked}")

# --- slim the masked model -----------------------------------------------------------------------------
run(0 slim "${_masked}" -o "${WORK}/slim" --report "${WORK}/slim.json" --quiet --no-sync)
expect_match("${OUT}" "^pruned .*masked -> .*slim \\(llama; zeroed heads, tolerance 0\\)\n" "summary")
expect_match("${OUT}" "heads +32 -> 21 \\(11 removed\\)" "summary")
expect_match("${OUT}" "kv heads +8 -> 7\n" "summary")
expect_match("${OUT}" "\n0 +model.layers.0.self_attn +8 -> 6 +2 -> 2 +1,5\n" "block 0")
expect_match("${OUT}" "\n1 +model.layers.1.self_attn +8 -> 6 +2 -> 2 +0,4\n" "block 1")
expect_match("${OUT}" "\n2 +model.layers.2.self_attn +8 -> 1 +2 -> 1 +1-7\n" "block 2")
expect_match("${OUT}" "\n3 +model.layers.3.self_attn +8 -> 8 +2 -> 2 +-\n" "block 3")
expect_match("${OUT}"
             "kept   block 1 \\(model.layers.1.self_attn\\): zeroed head 1 stays: grouped-query attention: every key/value group that stays keeps the same number of query heads, and key/value head 1 has only 1 zeroed of its 4 query heads, so each group loses 1\n"
             "kept head 1")
expect_match("${OUT}" "kept   block 1 \\(model.layers.1.self_attn\\): zeroed head 2 stays: grouped-query" "kept head 2")
expect_match("${OUT}"
             "kept   block 2 \\(model.layers.2.self_attn\\): zeroed head 0 stays: every head of the block is zeroed and a block keeps at least one head"
             "kept head 0 of layer 2")
expect_match("${OUT}"
             "note   block 3 \\(model.layers.3.self_attn\\): Q rows are zero while O is not, for query heads 2 \\(reported, kept\\)"
             "Q report")
check_command("mhaprune_check_pruned" "${CHECKER}" "${_masked}" "${WORK}/slim" --expect-removed 11)
check_command("make_masked.py --verify" "${PYTHON}" "${MASKER}" --verify "${WORK}/slim" --removed "${_removed}")

file(READ "${WORK}/slim.json" _report)
string(JSON _written GET "${_report}" written)
expect_equal("${_written}" "ON" "report: written")
string(JSON _reason GET "${_report}" blocks 1 kept 0 reason)
expect_equal("${_reason}" "gqa_balance" "report: block 1 kept reason")
string(JSON _reason GET "${_report}" blocks 2 kept 0 reason)
expect_equal("${_reason}" "min_heads" "report: block 2 kept reason")
string(JSON _n LENGTH "${_report}" blocks 2 removed)
expect_equal("${_n}" "7" "report: block 2 removed")
string(JSON _kv GET "${_report}" blocks 2 removed_kv 0)
expect_equal("${_kv}" "1" "report: block 2 removed_kv")
string(JSON _q GET "${_report}" blocks 3 zero_q 0)
expect_equal("${_q}" "2" "report: block 3 zero_q")
string(JSON _after GET "${_report}" prune blocks 2 heads_after)
expect_equal("${_after}" "1" "report: prune block 2 after")

# --- nothing to slim: exit 5, nothing written ---------------------------------------------------------
# The slimmed model still has zeroed heads (layer 1: 1 and 2, both in group 0; layer 2: the one kept),
# none of which can go.
run(5 slim "${WORK}/slim" -o "${WORK}/again" --report "${WORK}/again.json" --quiet)
expect_match("${OUT}" "nothing to slim in .*slim: 3 zeroed heads .*none that can be removed; nothing written\n$"
             "slim of the slimmed")
expect_match("${OUT}" "kept   block 1 .*zeroed head 1 stays: grouped-query attention: .* key/value head 1 has only 0 zeroed"
             "slim of the slimmed")
expect_absent("${WORK}/again" "slim of the slimmed")
file(READ "${WORK}/again.json" _report)
string(JSON _written GET "${_report}" written)
expect_equal("${_written}" "OFF" "report of nothing to slim: written")
run(5 slim "${MODEL}" -o "${WORK}/none" --quiet)
expect_match("${OUT}" "^nothing to slim in .*: 0 zeroed heads" "slim of an unmasked model")
expect_absent("${WORK}/none" "slim of an unmasked model")

# --- tolerance: O columns of 1e-6 (BF16 9.98e-7) are zero only with --tolerance above that ---------------
set(_tiny "${WORK}/tiny")
check_command("make_masked.py --value" "${PYTHON}" "${MASKER}" "${MODEL}" "${_tiny}" --heads "${_mask}" --value 1e-6)
run(5 slim "${_tiny}" -o "${WORK}/tiny_0" --quiet)
expect_absent("${WORK}/tiny_0" "tolerance 0")
run(5 slim "${_tiny}" -o "${WORK}/tiny_0" --tolerance 9e-7 --quiet)
run(0 slim "${_tiny}" -o "${WORK}/tiny_slim" --tolerance 1e-6 --quiet)
expect_match("${OUT}" "zeroed heads, tolerance 1e-06" "tolerance")
check_command("make_masked.py --verify (tolerance)" "${PYTHON}" "${MASKER}" --verify "${WORK}/tiny_slim" --removed "${_removed}")

# --- errors: exit 2/3, nothing written, the input unchanged -----------------------------------------------
hash_tree(_slim_before "${WORK}/slim")
run(2 slim "${_masked}" -o "${WORK}/slim" --quiet)
expect_match("${ERR}" "-o .*slim: already exists; use --force to replace it" "existing output")
hash_tree(_slim_after "${WORK}/slim")
expect_equal("${_slim_after}" "${_slim_before}" "an existing output without --force")
run(0 slim "${_masked}" -o "${WORK}/slim" --force --quiet)
check_command("mhaprune_check_pruned (--force)" "${CHECKER}" "${_masked}" "${WORK}/slim" --expect-removed 11)
run(2 slim "${_masked}" -o "${_masked}/inside" --quiet)
expect_match("${ERR}" "refusing to write into" "output inside the input")
run(2 slim "${_masked}" -o "${WORK}/bad" --tolerance -1)
expect_match("${ERR}" "--tolerance" "negative tolerance")
run(2 slim "${_masked}" -o "${WORK}/bad" --requantize q8_0)
expect_match("${ERR}" "--requantize applies to GGUF models" "--requantize on safetensors")
run(2 slim "${_masked}" -o "${WORK}/bad" --report "${_masked}/report.json")
expect_match("${ERR}" "--report .*refusing to write into the input" "report inside the input")
run(3 slim "${WORK}/no-such-model" -o "${WORK}/bad")
expect_absent("${WORK}/bad" "errors")
file(GLOB _tmp LIST_DIRECTORIES true "${WORK}/.*")
if(_tmp)
  message(FATAL_ERROR "temporaries left behind: ${_tmp}")
endif()

hash_tree(_masked_after "${_masked}")
expect_equal("${_masked_after}" "${_masked_before}" "the masked input after every run")
message(STATUS "slim.cmake: all checks passed")
