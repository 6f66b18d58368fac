# Installs the built vfe into a fresh prefix, then configures, builds and runs the consumer
# project against it. Arguments: -DBUILD_DIR= -DSOURCE_DIR= -DWORK_DIR= -DBUILD_TYPE=
foreach(step_var BUILD_DIR SOURCE_DIR WORK_DIR)
  if(NOT DEFINED ${step_var})
    message(FATAL_ERROR "run.cmake: ${step_var} is not set")
  endif()
endforeach()
file(REMOVE_RECURSE "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")
set(consumer_build "${WORK_DIR}/consumer")

function(run_step name)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "packaging: ${name} failed (${result})\n${out}\n${err}")
  endif()
  message(STATUS "packaging: ${name}: ok")
  set(last_output "${out}" PARENT_SCOPE)
endfunction()

run_step("install" ${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${prefix}")
if(NOT EXISTS "${prefix}/bin/vfe")
  message(FATAL_ERROR "packaging: the vfe program was not installed")
endif()
run_step("configure the consumer" ${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${consumer_build}"
         -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=${BUILD_TYPE})
run_step("build the consumer" ${CMAKE_COMMAND} --build "${consumer_build}")
run_step("run the consumer" "${consumer_build}/consumer")
message(STATUS "${last_output}")
