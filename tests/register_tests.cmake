# Evaluated by ctest at run time (included from the generated dsocr_test_list.cmake, which sets
# DSOCR_TESTS, DSOCR_BIN and the directories): one test per (platform, test executable).

if(NOT DEFINED ENV{RUSTICL_ENABLE})
  set(ENV{RUSTICL_ENABLE} llvmpipe)  # rusticl's CPU device, so that CI tests on it too
endif()
set(_env "RUSTICL_ENABLE=$ENV{RUSTICL_ENABLE}")
execute_process(COMMAND ${DSOCR_BIN} devices --tags
  OUTPUT_VARIABLE _tags RESULT_VARIABLE _rc OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT _rc EQUAL 0 OR _tags STREQUAL "")
  message(WARNING "dsocr devices --tags found no OpenCL device (rc ${_rc}); no op tests registered")
  add_test(no_opencl_device ${DSOCR_BIN} devices)
  return()
endif()
string(REPLACE "\n" ";" _tags "${_tags}")
if(DEFINED ENV{DSOCR_TEST_DEVICES} AND NOT "$ENV{DSOCR_TEST_DEVICES}" STREQUAL "")
  string(REPLACE "," ";" _want "$ENV{DSOCR_TEST_DEVICES}")
  set(_keep "")
  foreach(t ${_tags})
    list(FIND _want "${t}" _at)  # (not IN_LIST: ctest's script mode runs with old policies)
    if(_at GREATER -1)
      list(APPEND _keep ${t})
    endif()
  endforeach()
  set(_tags ${_keep})
endif()

# A CLI script whose header holds the line "# ctest: once" runs on one platform only: PoCL when
# present, else the first platform (for tests whose subject does not depend on the platform).
set(_once_tag "")
if(_tags)
  list(GET _tags 0 _once_tag)
endif()
list(FIND _tags "pocl" _at)
if(_at GREATER -1)
  set(_once_tag "pocl")
endif()

foreach(tag ${_tags})
  string(REPLACE ":" "_" tagname "${tag}")
  foreach(entry ${DSOCR_TESTS})
    string(REGEX MATCH "^[^=]+" stem "${entry}")
    string(REGEX REPLACE "^[^=]+=" "" exe "${entry}")
    if(exe MATCHES "\\.sh$" AND NOT tag STREQUAL _once_tag)
      file(STRINGS "${exe}" _once REGEX "^# ctest: once" LIMIT_COUNT 1)
      if(_once)
        continue()
      endif()
    endif()
    if(exe MATCHES "\\.sh$")
      add_test(${tagname}/${stem} bash ${exe} ${DSOCR_BIN} ${tag})
    else()
      add_test(${tagname}/${stem} ${exe} --device ${tag})
    endif()
    set_tests_properties(${tagname}/${stem} PROPERTIES
      ENVIRONMENT "${_env};DSOCR_SOURCE_DIR=${DSOCR_SOURCE_DIR};DSOCR_BINARY_DIR=${DSOCR_BINARY_DIR}"
      LABELS "${tagname}")
  endforeach()
endforeach()
