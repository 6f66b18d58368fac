# A model whose "description" nests a million arrays is refused (exit 1) with the JSON pointer
# of the first level past the limit of 256, not a stack overflow.
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
string(REPEAT "[" 1000000 open)
string(REPEAT "]" 1000000 close)
file(WRITE "${WORK_DIR}/deep.json"
     "{\"format\": \"vfe-model/1\", \"description\": ${open}${close}, \"variables\": [], \"factors\": []}")
execute_process(COMMAND "${VFE}" run "${WORK_DIR}/deep.json" RESULT_VARIABLE code
                ERROR_VARIABLE err TIMEOUT 60)
string(REPEAT "/0" 255 zeros)
if(NOT code EQUAL 1 OR NOT err MATCHES "/description${zeros}: nested deeper than 256 levels")
  message(FATAL_ERROR "expected exit 1 at /description/0.../0 (255 zeros), got ${code}: ${err}")
endif()
