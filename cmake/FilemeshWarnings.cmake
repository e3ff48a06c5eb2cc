# filemesh_set_warnings(<target>): the project's warning set on one of its own
# targets (never on generated code), as errors when FILEMESH_WERROR is ON.
function(filemesh_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow
    -Wnon-virtual-dtor -Wcast-align -Woverloaded-virtual -Wimplicit-fallthrough)
  if(FILEMESH_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
