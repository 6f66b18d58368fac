# Checks that the library's folders include one another in one direction only:
#   core → distributions → nodes → graph → schedulers → io → {agents, predictive, mpi} → tools
# (a folder may include those to its left, never one to its right), and that no library file
# is longer than 800 lines. SOURCE_DIR is the project's root.
cmake_policy(SET CMP0007 NEW)
set(rank_core 0)
set(rank_distributions 1)
set(rank_nodes 2)
set(rank_graph 3)
set(rank_schedulers 4)
set(rank_io 5)
set(rank_agents 6)
set(rank_predictive 6)
set(rank_mpi 6)
set(rank_tools 7)
set(failures "")
file(GLOB_RECURSE files RELATIVE ${SOURCE_DIR}
     ${SOURCE_DIR}/include/vfe/*.h ${SOURCE_DIR}/nodes/*.h ${SOURCE_DIR}/nodes/*.cc
     ${SOURCE_DIR}/graph/*.h ${SOURCE_DIR}/graph/*.cc ${SOURCE_DIR}/schedulers/*.h
     ${SOURCE_DIR}/schedulers/*.cc ${SOURCE_DIR}/io/*.h ${SOURCE_DIR}/io/*.cc
     ${SOURCE_DIR}/agents/*.h ${SOURCE_DIR}/agents/*.cc ${SOURCE_DIR}/predictive/*.h
     ${SOURCE_DIR}/predictive/*.cc ${SOURCE_DIR}/mpi/*.cc ${SOURCE_DIR}/tools/*.h
     ${SOURCE_DIR}/tools/*.cc)
foreach(file IN LISTS files)
  # The folder of a file: include/vfe/<folder>/x.h or <folder>/x.cc.
  if(file MATCHES "^include/vfe/([a-z_]+)/")
    set(folder ${CMAKE_MATCH_1})
  elseif(file MATCHES "^include/")
    continue()  # include/vfe/model.h includes everything: the public API in one include
  elseif(file MATCHES "^([a-z_]+)/")
    set(folder ${CMAKE_MATCH_1})
  else()
    continue()
  endif()
  if(NOT DEFINED rank_${folder})
    list(APPEND failures "${file}: folder '${folder}' has no place in the layers")
    continue()
  endif()
  file(READ ${SOURCE_DIR}/${file} text)
  string(REGEX MATCHALL "\n" newlines "${text}")
  list(LENGTH newlines length)
  if(length GREATER 800)
    list(APPEND failures "${file}: ${length} lines (at most 800 in a library file)")
  endif()
  file(STRINGS ${SOURCE_DIR}/${file} includes REGEX "^#include \"")
  foreach(line IN LISTS includes)
    string(REGEX REPLACE "^#include \"([^\"]+)\".*" "\\1" included "${line}")
    if(included MATCHES "^vfe/([a-z_]+)/")
      set(target ${CMAKE_MATCH_1})
    elseif(included MATCHES "^([a-z_]+)/")
      set(target ${CMAKE_MATCH_1})
    else()
      continue()
    endif()
    if(NOT DEFINED rank_${target})
      continue()  # tests/..., a third-party header
    endif()
    if(rank_${target} GREATER rank_${folder} OR
       (rank_${target} EQUAL rank_${folder} AND NOT target STREQUAL folder))
      list(APPEND failures "${file} (${folder}) includes ${included} (${target}), a later layer")
    endif()
  endforeach()
endforeach()
if(failures)
  string(REPLACE ";" "\n" text "${failures}")
  message(FATAL_ERROR "${text}")
endif()
list(LENGTH files count)
message(STATUS "${count} library files: layers one way, none over 800 lines")
