# Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#
# cmake -DCLI=<mhaprune> -DCHECKER=<mhaprune_check_pruned> -DMODEL=<checkpoint dir> -DWORK=<scratch dir>
#       -P end_to_end.cmake
#
# The tool on one bundled checkpoint, as a user runs it: inspect (table, JSON), score (JSON, SVG),
# prune by sparsity, by explicit heads, from a --config with a flag overriding it, and again on its own
# output; every pruned checkpoint goes through mhaprune_check_pruned. Also: an existing output is not
# replaced without --force, the input and its parent are never written, and the input's files are
# byte-identical at the end.

include("${CMAKE_CURRENT_LIST_DIR}/cli_helpers.cmake")
mhaprune_require(end_to_end.cmake CLI CHECKER MODEL WORK)

file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")

# read_json(<var> <file>): the file's text, after checking it parses.
function(read_json var file)
  file(READ "${file}" _text)
  string(JSON _type ERROR_VARIABLE _error TYPE "${_text}")
  if(_error OR NOT _type STREQUAL "OBJECT")
    message(FATAL_ERROR "${file}: not a JSON object: ${_error}")
  endif()
  set(${var} "${_text}" PARENT_SCOPE)
endfunction()

function(check_svg file title_regex)
  file(READ "${file}" _svg)
  expect_match("${_svg}" "^<svg xmlns=\"http://www.w3.org/2000/svg\"" "${file}")
  expect_match("${_svg}" "<title>${title_regex}[^<]*</title>" "${file}")
  expect_match("${_svg}" "</svg>\n$" "${file}")
  expect_match("${_svg}" "score \\(higher = keep\\)" "${file}: legend")
endfunction()

hash_tree(_input_before "${MODEL}")
file(READ "${MODEL}/config.json" _config)
string(JSON H GET "${_config}" num_attention_heads)
string(JSON LAYERS GET "${_config}" num_hidden_layers)
string(JSON _type GET "${_config}" model_type)
math(EXPR TOTAL "${H} * ${LAYERS}")
math(EXPR QUARTER "${TOTAL} / 4")
math(EXPR TOTAL_AFTER "${TOTAL} - ${QUARTER}")
math(EXPR LOCAL_QUARTER "${H} / 4")
if(_type STREQUAL "bert")
  set(ARCH bert)
  set(HEADS_SPEC "0:1\;2:0,3")  # 3 heads
  set(HEADS_REMOVED 3)
  set(HEADS_LAYER0 "1")
  set(SWAP_A "0:1")
  set(SWAP_B "0:2")
else()
  set(ARCH llama)
  set(HEADS_SPEC "0:1,5\;2:0,4")  # one head of each key/value group (groups of 4)
  set(HEADS_REMOVED 4)
  set(HEADS_LAYER0 "1,5")
  set(SWAP_A "0:1,5")
  set(SWAP_B "0:2,6")
endif()

# --- inspect ------------------------------------------------------------------------------------------
run(0 inspect "${MODEL}")
expect_match("${OUT}" "architecture +${ARCH} \\(from config.json model_type" "inspect")
expect_match("${OUT}" "heads +${TOTAL} of ${TOTAL} in ${LAYERS} blocks" "inspect")
run(0 inspect "${MODEL}" --json "${WORK}/inspect.json")
read_json(_j "${WORK}/inspect.json")
string(JSON _arch GET "${_j}" architecture)
expect_equal("${_arch}" "${ARCH}" "inspect --json architecture")
string(JSON _n LENGTH "${_j}" blocks)
expect_equal("${_n}" "${LAYERS}" "inspect --json blocks")
string(JSON _h GET "${_j}" blocks 0 heads)
expect_equal("${_h}" "${H}" "inspect --json blocks[0].heads")
run(0 inspect "${MODEL}" --json)
string(JSON _arch GET "${OUT}" architecture)
expect_equal("${_arch}" "${ARCH}" "inspect --json on stdout")

# --- score --------------------------------------------------------------------------------------------
run(0 score "${MODEL}" --json "${WORK}/score.json" --heatmap "${WORK}/score.svg")
read_json(_j "${WORK}/score.json")
string(JSON _removed GET "${_j}" totals heads_removed)
expect_equal("${_removed}" "0" "score: nothing removed")
string(JSON _n LENGTH "${_j}" blocks 0 scores)
expect_equal("${_n}" "${H}" "score: one score per head")
check_svg("${WORK}/score.svg" "mhaprune head scores: ")

# --- prune by sparsity ----------------------------------------------------------------------------------
set(_out1 "${WORK}/pruned")
run(0 prune "${MODEL}" -o "${_out1}" --sparsity 0.25 --scope global --criterion magnitude
    --report "${WORK}/report.json" --heatmap "${WORK}/pruned.svg")
expect_match("${OUT}" "heads +${TOTAL} -> ${TOTAL_AFTER} \\(${QUARTER} removed\\)" "prune summary")
check_pruned("${_out1}" ${QUARTER})
read_json(_j "${WORK}/report.json")
string(JSON _removed GET "${_j}" totals heads_removed)
expect_equal("${_removed}" "${QUARTER}" "report: heads removed")
check_svg("${WORK}/pruned.svg" "mhaprune: heads removed from ")
file(READ "${WORK}/pruned.svg" _svg)
expect_match("${_svg}" ", removed</title>" "heatmap marks removed heads")
file(READ "${_out1}/config.json" _pc)
string(JSON _layers LENGTH "${_pc}" mhaprune layers)
expect_equal("${_layers}" "${LAYERS}" "config.json mhaprune section")

# An existing output is not replaced without --force, and stays valid.
run(2 prune "${MODEL}" -o "${_out1}" --sparsity 0.5)
expect_match("${ERR}" "already exists. use --force" "existing output")
run(2 prune "${MODEL}" -o "${WORK}/other" --sparsity 0.5 --report "${WORK}/report.json")
check_pruned("${_out1}" ${QUARTER})
if(EXISTS "${WORK}/other")
  message(FATAL_ERROR "a refused prune left ${WORK}/other")
endif()

# --- explicit heads, with --force -------------------------------------------------------------------
run(0 prune "${MODEL}" -o "${_out1}" --force --heads "${HEADS_SPEC}")
check_pruned("${_out1}" ${HEADS_REMOVED})
expect_match("${OUT}" "\n0 +[^ ]+ +[0-9]+ -> [0-9]+ +[0-9]+ -> [0-9]+ +${HEADS_LAYER0}\n" "summary lists removed ids")

# --- prune the pruned checkpoint again: the target counts from the original, ids stay original -----
run(0 inspect "${_out1}")
expect_match("${OUT}" "pruned before" "inspect of a pruned checkpoint")
run(0 prune "${_out1}" -o "${WORK}/pruned_twice" --sparsity 0.25 --report "${WORK}/report_twice.json")
check_pruned("${WORK}/pruned_twice" ${QUARTER})

# --- --config, with a flag overriding one of its keys -------------------------------------------------
file(WRITE "${WORK}/config.json" "{\"target_sparsity\": 0.5, \"pruning_scope\": \"local\"}\n")
run(0 prune "${MODEL}" -o "${WORK}/from_config" --config "${WORK}/config.json" --sparsity 0.25
    --report "${WORK}/report_config.json" --quiet)
check_pruned("${WORK}/from_config" ${QUARTER})
read_json(_j "${WORK}/report_config.json")
math(EXPR _last "${LAYERS} - 1")
foreach(_i RANGE ${_last})
  string(JSON _n LENGTH "${_j}" blocks ${_i} removed)
  expect_equal("${_n}" "${LOCAL_QUARTER}" "local scope from --config: block ${_i}")
endforeach()

# --- the checker is not vacuous: weights of one prune under the config.json of another (same head
# counts, other ids) must fail it.
run(0 prune "${MODEL}" -o "${WORK}/swap_a" --heads "${SWAP_A}")
run(0 prune "${MODEL}" -o "${WORK}/swap_b" --heads "${SWAP_B}")
file(COPY_FILE "${WORK}/swap_b/config.json" "${WORK}/swap_a/config.json")
execute_process(COMMAND "${CHECKER}" "${MODEL}" "${WORK}/swap_a" RESULT_VARIABLE _rc ERROR_VARIABLE _err)
if(_rc EQUAL 0 OR NOT _err MATCHES "values differ from the original's kept heads")
  message(FATAL_ERROR "check_pruned accepted weights that do not match config.json (exit ${_rc}): ${_err}")
endif()

# --- never write over the input or its parent, even with --force (on a copy, to be safe) -------------
file(COPY "${MODEL}/" DESTINATION "${WORK}/parent/copy")
hash_tree(_copy_before "${WORK}/parent/copy")
run(2 prune "${WORK}/parent/copy" -o "${WORK}/parent/copy" --sparsity 0.25 --force)
expect_match("${ERR}" "refusing to write into" "output == input")
run(2 prune "${WORK}/parent/copy" -o "${WORK}/parent" --sparsity 0.25 --force)
run(2 prune "${WORK}/parent/copy" -o "${WORK}/parent/copy/sub" --sparsity 0.25)
hash_tree(_copy_after "${WORK}/parent/copy")
expect_equal("${_copy_after}" "${_copy_before}" "the input copy is unchanged")

hash_tree(_input_after "${MODEL}")
expect_equal("${_input_after}" "${_input_before}" "the input checkpoint is unchanged")
message(STATUS "end to end: all checks passed for ${MODEL}")
