# Runs an example program and, where it has a twin, the same model through the vfe program,
# and checks that what the example prints agrees with the twin (cmake -P; see
# tests/CMakeLists.txt, vfe_example_test).
#
#   EXAMPLE   the example's command, arguments separated by "|"
#   WORK_DIR  the folder it runs in (default: the current one)
#   MODE      run:   the example runs and exits with 0; its output matches OUTPUT_REGEX
#             model: TWIN is `vfe run --quiet <name>.json`; the example's printed free
#                    energies are the twin's (see below)
#             agent: TWIN is `vfe agent <name>.json`; the twin replays the observations the
#                    example printed (`--observations`) and must give the numbers the example
#                    printed at each step (AGENT: tmaze or grid_world)
#   TWIN      the twin's command, arguments separated by "|"
#   OUTPUT_REGEX  optional: the example's output must match it
#
# MODE model reads, from the example's output, with regexes whose matches end in the number:
#   SWEEPS_REGEX  F after every sweep: as many as the twin's "free_energy" list, each equal
#   FIRST_REGEX   F after the first sweep: the twin's first "free_energy"
#   LAST_REGEX    F at the end: the twin's last "free_energy"
#   BOUND_REGEX   −F at the end: the twin's "evidence_lower_bound"
#   and, from "after N sweeps" in the example's message, the twin's "iterations".
#
# "Equal" is to every printed digit: the twin's value, rounded to the decimals the example
# prints, is the printed value. RELATIVE (e.g. 1e-9) widens that by |value| · RELATIVE where
# the twin computes the same F in another order or form, so only rounding may differ.
cmake_policy(SET CMP0007 NEW)

include(${CMAKE_CURRENT_LIST_DIR}/numbers.cmake)

# ---- Running ---------------------------------------------------------------------------------

# Runs the "|"-separated `command`; its standard output in `out`. A failure ends the test.
function(run_command command out)
  string(REPLACE "|" ";" command "${command}")
  set(directory "${WORK_DIR}")
  if(NOT directory)
    set(directory ".")
  endif()
  execute_process(COMMAND ${command} WORKING_DIRECTORY "${directory}" RESULT_VARIABLE code
                  OUTPUT_VARIABLE stdout ERROR_VARIABLE stderr)
  if(NOT code STREQUAL "0")
    message(FATAL_ERROR "${command}: exit code ${code}\nstdout:\n${stdout}\nstderr:\n${stderr}")
  endif()
  # The examples are clean models: a warning (legal but probably a mistake) is a failure.
  if(stderr MATCHES "warning:")
    message(FATAL_ERROR "${command} warned:\n${stderr}")
  endif()
  set(${out} "${stdout}" PARENT_SCOPE)
endfunction()

# The numbers at the end of every match of `regex` in `text`.
function(printed_numbers regex text out)
  string(REGEX MATCHALL "${regex}" matches "${text}")
  set(numbers "")
  foreach(match IN LISTS matches)
    string(REGEX MATCH "[-+0-9.eE]+$" number "${match}")
    list(APPEND numbers "${number}")
  endforeach()
  set(${out} "${numbers}" PARENT_SCOPE)
endfunction()

# The one number at the end of the match of `regex` in `text`; no match ends the test.
function(printed_number what regex text out)
  printed_numbers("${regex}" "${text}" numbers)
  list(LENGTH numbers count)
  if(count EQUAL 0)
    message(FATAL_ERROR "${what}: the example's output does not match '${regex}':\n${text}")
  endif()
  list(GET numbers -1 number)
  set(${out} "${number}" PARENT_SCOPE)
endfunction()

run_command("${EXAMPLE}" example)
if(DEFINED OUTPUT_REGEX AND NOT example MATCHES "${OUTPUT_REGEX}")
  message(FATAL_ERROR "the example's output does not match '${OUTPUT_REGEX}':\n${example}")
endif()
foreach(bad IN ITEMS "nan" "inf")
  if(example MATCHES "(^|[^a-z])-?${bad}([^a-z]|$)")
    message(FATAL_ERROR "the example printed '${bad}':\n${example}")
  endif()
endforeach()

if(MODE STREQUAL "model")
  run_command("${TWIN}" twin)
  # The twin's result document: "free_energy": [...], "evidence_lower_bound": x, "iterations".
  if(NOT twin MATCHES "\"free_energy\": \\[([^]]*)\\]")
    message(FATAL_ERROR "the twin printed no free_energy list:\n${twin}")
  endif()
  string(REGEX MATCHALL "[-+0-9.eE]+" twin_f "${CMAKE_MATCH_1}")
  list(LENGTH twin_f twin_sweeps)
  if(DEFINED SWEEPS_REGEX)
    printed_numbers("${SWEEPS_REGEX}" "${example}" example_f)
    list(LENGTH example_f example_sweeps)
    if(NOT example_sweeps EQUAL twin_sweeps)
      message(FATAL_ERROR "the example prints F after ${example_sweeps} sweeps, the twin "
                          "after ${twin_sweeps}")
    endif()
    math(EXPR last "${twin_sweeps} - 1")
    foreach(i RANGE ${last})
      list(GET example_f ${i} printed)
      list(GET twin_f ${i} exact)
      math(EXPR sweep "${i} + 1")
      check_printed("F after sweep ${sweep}" "${printed}" "${exact}")
    endforeach()
  endif()
  if(DEFINED FIRST_REGEX)
    printed_number("F after the first sweep" "${FIRST_REGEX}" "${example}" printed)
    list(GET twin_f 0 exact)
    check_printed("F after the first sweep" "${printed}" "${exact}")
  endif()
  if(DEFINED LAST_REGEX)
    printed_number("F at the end" "${LAST_REGEX}" "${example}" printed)
    list(GET twin_f -1 exact)
    check_printed("F at the end" "${printed}" "${exact}")
  endif()
  if(DEFINED BOUND_REGEX)
    printed_number("-F" "${BOUND_REGEX}" "${example}" printed)
    if(NOT twin MATCHES "\"evidence_lower_bound\": ([-+0-9.eE]+)")
      message(FATAL_ERROR "the twin printed no evidence_lower_bound:\n${twin}")
    endif()
    check_printed("-F at the end" "${printed}" "${CMAKE_MATCH_1}")
  endif()
  if(example MATCHES "after ([0-9]+) sweeps")
    set(example_iterations ${CMAKE_MATCH_1})
    if(NOT twin MATCHES "\"iterations\": ([0-9]+)")
      message(FATAL_ERROR "the twin printed no iterations:\n${twin}")
    endif()
    if(NOT example_iterations EQUAL CMAKE_MATCH_1)
      message(FATAL_ERROR "the example ran ${example_iterations} sweeps, the twin "
                          "${CMAKE_MATCH_1}")
    endif()
  endif()
  message(STATUS "the free energies the example prints are the twin's (${twin_sweeps} sweeps)")
elseif(MODE STREQUAL "agent")
  include(${CMAKE_CURRENT_LIST_DIR}/agent_replay.cmake)
elseif(NOT MODE STREQUAL "run")
  message(FATAL_ERROR "MODE is run, model or agent: '${MODE}'")
endif()
