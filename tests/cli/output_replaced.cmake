# vfe run -o FILE over an existing file: the file is replaced by the whole result, and no
# temporary file is left beside it; when the run fails (a model error), FILE keeps its old
# content.
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
set(result "${WORK_DIR}/result.json")
file(WRITE "${result}" "old content\n")
execute_process(COMMAND "${VFE}" run --quiet "${MODEL}" -o "${result}" RESULT_VARIABLE code
                ERROR_VARIABLE err)
if(NOT code EQUAL 0)
  message(FATAL_ERROR "vfe run failed (${code}): ${err}")
endif()
file(READ "${result}" text)
if(NOT text MATCHES "^{.*\"converged\": true.*}\n$")
  message(FATAL_ERROR "the result is not the whole document:\n${text}")
endif()
file(GLOB left RELATIVE "${WORK_DIR}" "${WORK_DIR}/*" "${WORK_DIR}/.*")
if(NOT left STREQUAL "result.json")
  message(FATAL_ERROR "expected only result.json in the folder, found: ${left}")
endif()
# A run that fails after -o was named leaves the old file as it was.
file(WRITE "${result}" "old content\n")
file(WRITE "${WORK_DIR}/bad.json" "{\"format\": \"vfe-model/1\", \"variables\": []}")
execute_process(COMMAND "${VFE}" run --quiet "${WORK_DIR}/bad.json" -o "${result}"
                RESULT_VARIABLE code ERROR_VARIABLE err)
if(code EQUAL 0)
  message(FATAL_ERROR "a model with no factors ran")
endif()
file(READ "${result}" text)
if(NOT text STREQUAL "old content\n")
  message(FATAL_ERROR "the failed run changed the result file:\n${text}")
endif()
# Through a symbolic link: the file it points to gets the result, and the link stays a link.
file(WRITE "${WORK_DIR}/real.json" "old content\n")
file(CREATE_LINK real.json "${WORK_DIR}/link.json" SYMBOLIC)
execute_process(COMMAND "${VFE}" run --quiet "${MODEL}" -o "${WORK_DIR}/link.json"
                RESULT_VARIABLE code ERROR_VARIABLE err)
file(READ "${WORK_DIR}/real.json" text)
if(NOT code EQUAL 0 OR NOT IS_SYMLINK "${WORK_DIR}/link.json" OR NOT text MATCHES "converged")
  message(FATAL_ERROR "-o through a link: exit ${code} (${err}); the link must stay and its "
                      "target hold the result:\n${text}")
endif()
# -o /dev/stdout with standard output redirected to a file: written in place, not replaced.
execute_process(COMMAND "${VFE}" run --quiet "${MODEL}" -o /dev/stdout
                OUTPUT_FILE "${WORK_DIR}/stdout.json" RESULT_VARIABLE code ERROR_VARIABLE err)
file(READ "${WORK_DIR}/stdout.json" text)
if(NOT code EQUAL 0 OR NOT text MATCHES "converged")
  message(FATAL_ERROR "-o /dev/stdout: exit ${code} (${err}):\n${text}")
endif()
