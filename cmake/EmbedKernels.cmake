# Embeds OpenCL C sources into a generated C++ file at build time, using CMake alone.
# Each file becomes one entry {file name, text} of dsocr::embedded_kernel_sources().

set(DSOCR_EMBED_SCRIPT ${CMAKE_CURRENT_LIST_DIR}/embed_kernels_run.cmake)

function(dsocr_embed_kernels output)
  set(files ${ARGN})
  add_custom_command(
    OUTPUT ${output}
    COMMAND ${CMAKE_COMMAND} -DOUTPUT=${output} "-DFILES=${files}" -P ${DSOCR_EMBED_SCRIPT}
    DEPENDS ${files} ${DSOCR_EMBED_SCRIPT}
    COMMENT "Embedding ${CMAKE_CURRENT_SOURCE_DIR}/kernels/*.cl"
    VERBATIM)
endfunction()
