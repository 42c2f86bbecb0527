# Embeds files into a generated C++ file at build time, using CMake alone: each file becomes one
# entry {file name, text} of the map a generated function returns (cmake/embed_files_run.cmake).
#   dsocr_embed_kernels: kernels/*.cl      -> dsocr::embedded_kernel_sources()
#   dsocr_embed_cases:   parity/cases/*.json -> dsocr::embedded_op_case_files() (parity/op_cases.h)

set(DSOCR_EMBED_SCRIPT ${CMAKE_CURRENT_LIST_DIR}/embed_files_run.cmake)

function(dsocr_embed_files output function comment)
  set(files ${ARGN})
  add_custom_command(
    OUTPUT ${output}
    COMMAND ${CMAKE_COMMAND} -DOUTPUT=${output} -DFUNCTION=${function} "-DFILES=${files}" -P ${DSOCR_EMBED_SCRIPT}
    DEPENDS ${files} ${DSOCR_EMBED_SCRIPT}
    COMMENT "${comment}"
    VERBATIM)
endfunction()

function(dsocr_embed_kernels output)
  dsocr_embed_files(${output} embedded_kernel_sources "Embedding ${CMAKE_CURRENT_SOURCE_DIR}/kernels/*.cl" ${ARGN})
endfunction()

function(dsocr_embed_cases output)
  dsocr_embed_files(${output} embedded_op_case_files "Embedding ${CMAKE_CURRENT_SOURCE_DIR}/parity/cases/*.json"
    ${ARGN})
endfunction()
