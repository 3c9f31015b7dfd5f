# Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#
# cmake -DCLI=<mhaprune> -DCHECKER=<mhaprune_check_pruned> -DMODEL=<tiny-bert dir> -DWORK=<scratch dir>
#       -P inc_config.cmake
#
# `prune --config` with Intel Neural Compressor configs, as INC users write them: one object with
# pattern "mha" and keys mhaprune ignores (one warning line naming them), and `pruning_configs` whose
# local configs take different layers with different targets and scopes (each group pruned by its own
# settings, checked per block in the report and by mhaprune_check_pruned); and the errors: two configs
# taking one block, another pattern, an unknown key (with the closest known one), a plan given to
# `score`; the config's compensation, and --compensate over it. tiny-bert: 4 layers of 4 heads,
# blocks "bert.encoder.layer.N.attention".

include("${CMAKE_CURRENT_LIST_DIR}/cli_helpers.cmake")
mhaprune_require(inc_config.cmake CLI CHECKER MODEL WORK)
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")

# removed_counts(<var> <report>): "n0;n1;n2;n3", the heads each block lost.
function(removed_counts var report)
  file(READ "${report}" _j)
  string(JSON _blocks LENGTH "${_j}" blocks)
  math(EXPR _last "${_blocks} - 1")
  set(_list "")
  foreach(_i RANGE ${_last})
    string(JSON _n LENGTH "${_j}" blocks ${_i} removed)
    list(APPEND _list ${_n})
  endforeach()
  set(${var} "${_list}" PARENT_SCOPE)
endfunction()

# --- one INC object: pattern mha, INC's keys mhaprune ignores -> one warning line, the prune runs ---
file(WRITE "${WORK}/single.json" [=[{
  "pattern": "mha", "target_sparsity": 0.25, "criterion_type": "magnitude", "pruning_scope": "local",
  "pruning_type": "snip_momentum", "reg_type": "group_lasso", "pruning_op_types": ["Linear"],
  "min_sparsity_ratio_per_op": 0.0, "max_sparsity_ratio_per_op": 0.98, "sparsity_decay_type": "exp"
}]=])
run(0 prune "${MODEL}" -o "${WORK}/single" --config "${WORK}/single.json" --report "${WORK}/single.json.report" -q)
check_pruned("${WORK}/single" 4)
removed_counts(_counts "${WORK}/single.json.report")
expect_equal("${_counts}" "1;1;1;1" "local scope from an INC config: removed per block")
expect_equal("${ERR}" "mhaprune: warning: Intel Neural Compressor config keys accepted and ignored (mhaprune does not use them): pruning_type, min_sparsity_ratio_per_op, pruning_op_types, reg_type\n"
             "one warning line naming the ignored keys once")

# --- pruning_configs: layers 0-1 global at 0.5 (4 of their 8 heads), layers 2-3 local at 0.25 -----
file(WRITE "${WORK}/plan.json" [=[{
  "pruning_configs": [
    {"op_names": ["layer\\.[01]\\."], "target_sparsity": 0.5},
    {"op_names": ["layer\\.[23]\\."], "target_sparsity": 0.25, "pruning_scope": "local", "reg_coeff": 0.1}
  ],
  "pattern": "mha", "criterion_type": "magnitude", "pruning_type": "snip_momentum"
}]=])
run(0 prune "${MODEL}" -o "${WORK}/plan" --config "${WORK}/plan.json" --report "${WORK}/plan_report.json" -q)
check_pruned("${WORK}/plan" 6)
expect_match("${OUT}" "2 pruning configs" "summary names the plan")
removed_counts(_counts "${WORK}/plan_report.json")
list(GET _counts 0 _n0)
list(GET _counts 1 _n1)
list(GET _counts 2 _n2)
list(GET _counts 3 _n3)
math(EXPR _group0 "${_n0} + ${_n1}")
if(NOT _group0 EQUAL 4 OR NOT _n2 EQUAL 1 OR NOT _n3 EQUAL 1)
  message(FATAL_ERROR "plan: removed per block ${_counts}; expected 4 in blocks 0-1 together, 1 in 2 and 1 in 3")
endif()
expect_match("${ERR}" "^mhaprune: warning: [^\n]*: pruning_type, reg_coeff\n$" "one warning for both configs")
# Every flag given overrides its key in every config: --sparsity 0 leaves every block whole.
run(0 prune "${MODEL}" -o "${WORK}/plan_zero" --config "${WORK}/plan.json" --sparsity 0 -q)
check_pruned("${WORK}/plan_zero" 0)

# --- errors: config_error is exit 2 (exit_codes.hpp), one line, nothing written -------------------------------------------------------
file(WRITE "${WORK}/overlap.json" [=[{"pruning_configs": [{"op_names": ["layer\\.1\\."]}, {"op_names": ["attention"]}],
  "pattern": "mha", "criterion_type": "magnitude"}]=])
run(2 prune "${MODEL}" -o "${WORK}/overlap" --config "${WORK}/overlap.json")
expect_match("${ERR}" "block \"bert.encoder.layer.1.attention\" is taken by pruning_configs\\[0\\] \\(op_names \\[layer\\\\.1\\\\.\\]\\) and by pruning_configs\\[1\\]" "overlap")
file(WRITE "${WORK}/pattern.json" [=[{"pattern": "4x1", "target_sparsity": 0.5}]=])
run(2 prune "${MODEL}" -o "${WORK}/pattern" --config "${WORK}/pattern.json")
expect_match("${ERR}" "\"4x1\" is not supported: mhaprune prunes attention heads" "another pattern")
file(WRITE "${WORK}/typo.json" [=[{"pattern": "mha", "target_sparsty": 0.5}]=])
run(2 prune "${MODEL}" -o "${WORK}/typo" --config "${WORK}/typo.json")
expect_match("${ERR}" "unknown config key \"target_sparsty\"; did you mean \"target_sparsity\"\\?" "unknown key")
run(2 score "${MODEL}" --config "${WORK}/plan.json")
expect_match("${ERR}" "only prune runs such a plan" "a plan given to score")
# The config's compensation is used unless --compensate is given: "bias" without statistics fails
# naming the method; --compensate none overrides it.
file(WRITE "${WORK}/compensation.json" [=[{"target_sparsity": 0.25, "compensation": "bias"}]=])
run(2 prune "${MODEL}" -o "${WORK}/compensation" --config "${WORK}/compensation.json")
expect_match("${ERR}" "compensation \"bias\" needs O-input statistics" "compensation from --config")
run(0 prune "${MODEL}" -o "${WORK}/compensation_none" --config "${WORK}/compensation.json" --compensate none -q)
check_pruned("${WORK}/compensation_none" 4)
foreach(_d overlap pattern typo compensation)
  if(EXISTS "${WORK}/${_d}")
    message(FATAL_ERROR "a failed prune left ${WORK}/${_d} behind")
  endif()
endforeach()
