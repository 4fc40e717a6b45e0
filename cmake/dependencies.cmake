# Finds cleave's optional parts and says what it found. Each CLEAVE_X option is
# AUTO (use when found), ON (fail when missing) or OFF.

find_package(PkgConfig QUIET)

function(clv_require_or_skip opt found what)
  if(NOT found AND "${${opt}}" STREQUAL "ON")
    message(FATAL_ERROR "${opt}=ON but ${what} was not found (scripts/setup.sh installs it)")
  endif()
endfunction()

# --- CUDA -------------------------------------------------------------------
set(CLEAVE_HAVE_CUDA OFF)
set(CLEAVE_CUDA_DETAIL "")
if(NOT CLEAVE_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      # Consumer cards (Ampere, Ada, Blackwell) and Hopper; override with
      # -DCMAKE_CUDA_ARCHITECTURES=90 for a faster single-architecture build.
      execute_process(COMMAND ${CMAKE_CUDA_COMPILER} --list-gpu-arch
                      OUTPUT_VARIABLE _clv_archs ERROR_QUIET)
      set(CMAKE_CUDA_ARCHITECTURES 86 89 90)
      if(_clv_archs MATCHES "compute_120")
        list(APPEND CMAKE_CUDA_ARCHITECTURES 120)
      endif()
    endif()
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(CMAKE_CUDA_STANDARD 17)
    set(CLEAVE_HAVE_CUDA ON)
    set(CLEAVE_CUDA_DETAIL "(nvcc ${CMAKE_CUDA_COMPILER_VERSION}, architectures ${CMAKE_CUDA_ARCHITECTURES})")
  endif()
endif()
clv_require_or_skip(CLEAVE_CUDA "${CLEAVE_HAVE_CUDA}" "nvcc")

# --- oneDNN -----------------------------------------------------------------
set(CLEAVE_HAVE_DNNL OFF)
set(CLEAVE_DNNL_DETAIL "")
if(NOT CLEAVE_DNNL STREQUAL "OFF")
  # Debian's oneDNN CMake package requires OpenCL's; without it, find_package
  # would stop the whole configuration instead of reporting oneDNN missing.
  find_package(OpenCL QUIET)
  if(OpenCL_FOUND)
    find_package(dnnl QUIET CONFIG)
  else()
    set(CLEAVE_DNNL_DETAIL "(its CMake package needs OpenCL headers: ocl-icd-opencl-dev)")
  endif()
  if(dnnl_FOUND)
    set(CLEAVE_HAVE_DNNL ON)
    set(CLEAVE_DNNL_DETAIL "(${dnnl_VERSION})")
  endif()
endif()
clv_require_or_skip(CLEAVE_DNNL "${CLEAVE_HAVE_DNNL}" "oneDNN (libdnnl-dev)")

# --- io_uring ---------------------------------------------------------------
set(CLEAVE_HAVE_URING OFF)
set(CLEAVE_URING_DETAIL "")
if(NOT CLEAVE_URING STREQUAL "OFF" AND PkgConfig_FOUND)
  pkg_check_modules(URING QUIET IMPORTED_TARGET liburing)
  if(URING_FOUND)
    set(CLEAVE_HAVE_URING ON)
    set(CLEAVE_URING_DETAIL "(liburing ${URING_VERSION})")
  endif()
endif()
clv_require_or_skip(CLEAVE_URING "${CLEAVE_HAVE_URING}" "liburing (liburing-dev)")

# --- hwloc, libnuma (thread pinning and NUMA placement) ----------------------
set(CLEAVE_HAVE_HWLOC OFF)
set(CLEAVE_HAVE_NUMA OFF)
if(PkgConfig_FOUND)
  pkg_check_modules(HWLOC QUIET IMPORTED_TARGET hwloc)
  pkg_check_modules(NUMA QUIET IMPORTED_TARGET numa)
  set(CLEAVE_HAVE_HWLOC ${HWLOC_FOUND})
  set(CLEAVE_HAVE_NUMA ${NUMA_FOUND})
endif()

# --- libFuzzer (needs clang; the main build may use any C11 compiler) -----
set(CLEAVE_HAVE_FUZZ OFF)
set(CLEAVE_FUZZ_DETAIL "")
if(CLEAVE_FUZZ)
  find_program(CLEAVE_CLANG NAMES clang clang-18 clang-17 clang-16 clang-15 clang-14)
  if(CLEAVE_CLANG)
    execute_process(COMMAND ${CLEAVE_CLANG} -print-file-name=libclang_rt.fuzzer-x86_64.a
                    OUTPUT_VARIABLE _clv_fuzzlib OUTPUT_STRIP_TRAILING_WHITESPACE)
    execute_process(COMMAND ${CLEAVE_CLANG} -print-runtime-dir
                    OUTPUT_VARIABLE _clv_rtdir OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    if(EXISTS "${_clv_fuzzlib}" OR EXISTS "${_clv_rtdir}/libclang_rt.fuzzer-x86_64.a"
       OR EXISTS "${_clv_rtdir}/libclang_rt.fuzzer.a")
      set(CLEAVE_HAVE_FUZZ ON)
      set(CLEAVE_FUZZ_DETAIL "(${CLEAVE_CLANG})")
    else()
      set(CLEAVE_FUZZ_DETAIL "(clang without libFuzzer runtime)")
    endif()
  endif()
endif()
