# Installs the built vfe into a fresh prefix, then configures, builds and runs the consumer
# project (this folder) against it; any failing step fails the test with its output.
# Arguments: -DBUILD_DIR= (vfe's build tree) -DSOURCE_DIR= (this folder) -DWORK_DIR= (a
# scratch folder inside the build tree, removed first) [-DBUILD_TYPE=]
foreach(required BUILD_DIR SOURCE_DIR WORK_DIR)
  if(NOT DEFINED ${required} OR "${${required}}" STREQUAL "")
    message(FATAL_ERROR "run.cmake: ${required} is not set")
  endif()
endforeach()
file(REMOVE_RECURSE "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")
set(consumer_build "${WORK_DIR}/consumer")

function(run_step name)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result OUTPUT_VARIABLE out
                  ERROR_VARIABLE err)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "packaging: ${name} failed (${result})\n${out}\n${err}")
  endif()
  message(STATUS "packaging: ${name}: ok")
  set(last_output "${out}" PARENT_SCOPE)
endfunction()

function(require_installed description)
  file(GLOB_RECURSE found "${prefix}/*")
  foreach(pattern IN LISTS ARGN)
    list(FILTER found INCLUDE REGEX "${pattern}")
  endforeach()
  if(NOT found)
    message(FATAL_ERROR "packaging: missing from the install under ${prefix}: ${description}")
  endif()
endfunction()

# 1. Install.
run_step("install" ${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${prefix}")
require_installed("the library" "/libvfe\\.(a|so)$")
require_installed("the public headers" "/include/vfe/model\\.h$")
require_installed("the package configuration" "/cmake/vfe/vfeConfig\\.cmake$")
require_installed("the exported targets" "/cmake/vfe/vfeTargets\\.cmake$")
require_installed("the vfe program" "/bin/vfe$")

# 2. Configure the consumer with the same compiler and Eigen as the build, finding vfe only
# in the prefix (no package registry).
file(STRINGS "${BUILD_DIR}/CMakeCache.txt" cache REGEX "^(CMAKE_CXX_COMPILER|Eigen3_DIR):")
set(forwarded)
foreach(entry IN LISTS cache)
  string(REGEX REPLACE "^([^:]+):[^=]*=(.*)$" "-D\\1=\\2" definition "${entry}")
  list(APPEND forwarded "${definition}")
endforeach()
if(NOT BUILD_TYPE)
  set(BUILD_TYPE Release)
endif()
run_step("configure the consumer" ${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${consumer_build}"
         "-DCMAKE_PREFIX_PATH=${prefix}" -DCMAKE_BUILD_TYPE=${BUILD_TYPE}
         -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF ${forwarded})
file(STRINGS "${consumer_build}/CMakeCache.txt" vfe_dir REGEX "^vfe_DIR:")
string(FIND "${vfe_dir}" "${prefix}/" at)
if(NOT at GREATER -1)
  message(FATAL_ERROR "packaging: the consumer found vfe outside the prefix (${vfe_dir})")
endif()

# 3. Build and run it.
run_step("build the consumer" ${CMAKE_COMMAND} --build "${consumer_build}")
run_step("run the consumer" "${consumer_build}/consumer")
message(STATUS "${last_output}")
