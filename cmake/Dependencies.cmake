# Every dependency comes from the system (Debian/Ubuntu packages); nothing is vendored.
find_package(PkgConfig REQUIRED)
find_package(OpenCL REQUIRED)
find_package(CLBlast REQUIRED)
find_package(HDF5 REQUIRED COMPONENTS C)
find_package(fmt REQUIRED)
find_package(PNG REQUIRED)
find_package(JPEG REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)

find_path(DSOCR_CLHPP_DIR CL/opencl.hpp HINTS ${OpenCL_INCLUDE_DIRS})
if(NOT DSOCR_CLHPP_DIR)
  message(FATAL_ERROR "OpenCL C++ headers (CL/opencl.hpp) not found: install opencl-clhpp-headers")
endif()

add_library(dsocr_deps INTERFACE)
add_library(dsocr::deps ALIAS dsocr_deps)
target_link_libraries(dsocr_deps INTERFACE
  OpenCL::OpenCL clblast ${HDF5_C_LIBRARIES} fmt::fmt PNG::PNG JPEG::JPEG
  nlohmann_json::nlohmann_json PkgConfig::PCRE2)
target_include_directories(dsocr_deps INTERFACE ${HDF5_C_INCLUDE_DIRS} ${DSOCR_CLHPP_DIR})
target_compile_definitions(dsocr_deps INTERFACE PCRE2_CODE_UNIT_WIDTH=8)

if(DSOCR_PDF)
  pkg_check_modules(POPPLER_CPP REQUIRED IMPORTED_TARGET poppler-cpp)
  target_link_libraries(dsocr_deps INTERFACE PkgConfig::POPPLER_CPP)
  target_compile_definitions(dsocr_deps INTERFACE DSOCR_HAVE_PDF=1)
else()
  target_compile_definitions(dsocr_deps INTERFACE DSOCR_HAVE_PDF=0)
endif()
