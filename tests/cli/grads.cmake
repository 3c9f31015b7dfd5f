# Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#
# --grads end to end (included from tests/cli/CMakeLists.txt; label "cli"). The gradients files are
# written at test time by tests/pycheck/write_grads.py, which shares no code with the tool (numpy,
# safetensors by hand) and computes every head's expected score from the criteria's definitions:
#   cli_grads_write_<model>          write grads.safetensors, expected.json and broken copies
#   cli_grads_<model>_<criterion>    `score --grads` agrees with the expected scores (5 criteria)
#   cli_grads_prune_<criterion>      tiny-bert, one head per layer: each layer loses its lowest
#   cli_grads_broken_* / usage_*     bad files exit 3 naming the tensor, before anything is written

include("${PROJECT_SOURCE_DIR}/tests/pycheck/numpy_python.cmake")
mhaprune_numpy_python(_grads_py "the --grads CLI tests need")
set(_grads_script "${PROJECT_SOURCE_DIR}/tests/pycheck/write_grads.py")

foreach(_model tiny-qwen2 tiny-bert)
  set(_g "${_work}/grads-${_model}")
  add_test(NAME cli_grads_write_${_model} COMMAND "${_grads_py}" "${_grads_script}" write "${_data}/${_model}" "${_g}")
  set_tests_properties(cli_grads_write_${_model} PROPERTIES
    LABELS cli TIMEOUT 60 ENVIRONMENT PYTHONDONTWRITEBYTECODE=1 FIXTURES_SETUP cli_grads_${_model})
  foreach(_criterion gradient snip snip_momentum taylor fisher)
    add_test(NAME cli_grads_${_model}_${_criterion}
             COMMAND "${_grads_py}" "${_grads_script}" check "${_cli}" "${_data}/${_model}" "${_g}" ${_criterion})
    set_tests_properties(cli_grads_${_model}_${_criterion} PROPERTIES
      LABELS cli TIMEOUT 60 ENVIRONMENT PYTHONDONTWRITEBYTECODE=1 FIXTURES_REQUIRED cli_grads_${_model})
  endforeach()
endforeach()
foreach(_criterion gradient snip snip_momentum taylor fisher)
  add_test(NAME cli_grads_prune_${_criterion}
           COMMAND "${_grads_py}" "${_grads_script}" check-prune "${_cli}" "${_data}/tiny-bert"
                   "${_work}/grads-tiny-bert" ${_criterion})
  set_tests_properties(cli_grads_prune_${_criterion} PROPERTIES
    LABELS cli TIMEOUT 60 ENVIRONMENT PYTHONDONTWRITEBYTECODE=1 FIXTURES_REQUIRED cli_grads_tiny-bert)
endforeach()

# Bad gradients files: exit 3, one line naming the file, the tensor and the shapes; no output.
set(_gb "${_work}/grads-tiny-bert")
set(_o3 "bert.encoder.layer.3.attention.output.dense.weight")
set(_grads_prune prune @DATA@/tiny-bert -o @OUT@ --sparsity 0.25)
mhaprune_cli_case(cli_grads_broken_missing 3
                  "broken_missing.safetensors: gradients tensor .${_o3}.grad.sum. is missing .expected one shaped .64, 64.."
                  ${_grads_prune} --criterion gradient --grads ${_gb}/broken_missing.safetensors)
mhaprune_cli_case(cli_grads_broken_shape 3 "${_o3}.grad.sum.: shape .64, 63. differs from the expected .64, 64."
                  ${_grads_prune} --criterion snip --grads ${_gb}/broken_shape.safetensors)
mhaprune_cli_case(cli_grads_broken_count0 3 "layer.3.attention.head_gate.count.: the count is 0"
                  ${_grads_prune} --criterion taylor --grads ${_gb}/broken_count0.safetensors)
mhaprune_cli_case(cli_grads_broken_nan 3 "${_o3}.snip_momentum.score.: element .3, 7. is nan"
                  ${_grads_prune} --criterion snip_momentum --grads ${_gb}/broken_nan.safetensors)
mhaprune_cli_case(cli_grads_broken_no_file 3 "no-grads.safetensors.*No such file"
                  ${_grads_prune} --criterion fisher --grads ${_gb}/no-grads.safetensors)
# A statistics file is not a gradients file.
mhaprune_cli_case(cli_grads_broken_stats_file 3 "stats_good.safetensors: holds no gradient statistics"
                  ${_grads_prune} --criterion gradient --grads @BROKEN@/stats_good.safetensors)
foreach(_case missing shape count0 nan no_file stats_file)
  set_property(TEST cli_grads_broken_${_case} APPEND PROPERTY FIXTURES_REQUIRED cli_grads_tiny-bert)
endforeach()
# Gradient criteria without a file say what to give; GGUF models take no gradients file.
mhaprune_cli_case(cli_usage_grads_needed 2 "no gradient given.*give a gradients file"
                  prune @DATA@/tiny-bert -o @OUT@ --sparsity 0.25 --criterion snip)
mhaprune_cli_case(cli_usage_grads_gguf 2 "--grads applies to safetensors checkpoints"
                  score "${PROJECT_SOURCE_DIR}/tests/fuzz/gguf_corpus/valid-tensors" --grads ${_gb}/grads.safetensors)
