# Runs a command and checks its exit status and output (stdout and stderr
# together), which add_test's PASS_REGULAR_EXPRESSION alone cannot do.
#
#   cmake -DEXPECT_EXIT=0 -DEXPECT_OUTPUT=regex [-DENVIRONMENT=NAME=value]
#         -P check_command.cmake -- PROGRAM ARGS...
# EXPECT_EXIT may be "nonzero".
set(COMMAND "")
set(in_command FALSE)
math(EXPR last "${CMAKE_ARGC} - 1")
foreach(i RANGE ${last})
  if(in_command)
    list(APPEND COMMAND "${CMAKE_ARGV${i}}")
  elseif(CMAKE_ARGV${i} STREQUAL "--")
    set(in_command TRUE)
  endif()
endforeach()
foreach(assignment IN LISTS ENVIRONMENT)
  string(FIND "${assignment}" "=" eq)
  string(SUBSTRING "${assignment}" 0 ${eq} name)
  math(EXPR value_start "${eq} + 1")
  string(SUBSTRING "${assignment}" ${value_start} -1 value)
  set(ENV{${name}} "${value}")
endforeach()
execute_process(COMMAND ${COMMAND}
  RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE out TIMEOUT 60)
message("${out}")
if(EXPECT_EXIT STREQUAL "nonzero")
  if(status EQUAL 0)
    message(FATAL_ERROR "exit status 0, expected non-zero")
  endif()
elseif(NOT status STREQUAL "${EXPECT_EXIT}")
  message(FATAL_ERROR "exit status ${status}, expected ${EXPECT_EXIT}")
endif()
if(NOT out MATCHES "${EXPECT_OUTPUT}")
  message(FATAL_ERROR "output does not match: ${EXPECT_OUTPUT}")
endif()
