# A FIFO with no writer named as the model or as a CSV file is refused at once by name (opening
# it would block until a writer came); the test's timeout catches a hang.
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
execute_process(COMMAND mkfifo "${WORK_DIR}/fifo" RESULT_VARIABLE made)
if(NOT made EQUAL 0)
  message(FATAL_ERROR "mkfifo failed")
endif()
execute_process(COMMAND "${VFE}" check "${WORK_DIR}/fifo" RESULT_VARIABLE code
                ERROR_VARIABLE err TIMEOUT 20)
if(NOT code EQUAL 4 OR NOT err MATCHES "cannot read the model file '.*fifo': it is a FIFO")
  message(FATAL_ERROR "expected exit 4 naming the FIFO, got ${code}: ${err}")
endif()
file(WRITE "${WORK_DIR}/model.json" "{\"format\": \"vfe-model/1\", \"variables\": [
  {\"name\": \"mu\", \"family\": \"Gaussian\"},
  {\"name\": \"y\", \"shape\": [2], \"observed\": {\"csv\": \"fifo\"}}],
  \"factors\": [{\"node\": \"Gaussian\", \"out\": \"mu\", \"mean\": 0, \"precision\": 1},
  {\"node\": \"Gaussian\", \"for\": {\"n\": [0, 2]}, \"out\": \"y[n]\", \"mean\": \"mu\", \"precision\": 1}]}")
execute_process(COMMAND "${VFE}" run "${WORK_DIR}/model.json" RESULT_VARIABLE code
                ERROR_VARIABLE err TIMEOUT 20)
if(NOT code EQUAL 4 OR NOT err MATCHES "/variables/1/observed/csv: cannot read the CSV file '.*fifo': it is a FIFO")
  message(FATAL_ERROR "expected exit 4 naming the FIFO, got ${code}: ${err}")
endif()
