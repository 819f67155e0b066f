# The eBPF kernel state source (daemon/kernel-bpf.c, daemon/bpf/tcpstate.bpf.c).
#
# TCPEDU_BPF=AUTO (default) builds it when everything it needs is there, ON fails the configure when
# something is missing, OFF leaves it out. Built: vmlinux.h from the kernel's BTF, the BPF object
# (clang -target bpf, CO-RE), its skeleton (bpftool gen skeleton), and kernel-bpf.c with HAVE_BPF=1
# against libbpf. Not built: kernel-bpf.c without HAVE_BPF, whose kernel_bpf_open() fails with the
# reason given here. The BPF object is made by custom commands, never a C target, so the flags added
# for the host (sanitizers, the fuzz build's instrumentation, -Werror) never reach it.
#
# Tools are looked for in PATH only (bpftool lives in /usr/sbin on Debian): pass
# -DTCPEDU_BPFTOOL=/path/to/bpftool or -DTCPEDU_BPF_CLANG=/path/to/clang to use others, and
# -DTCPEDU_BPF_BTF=FILE to build against another kernel's BTF.

set(TCPEDU_BPF AUTO CACHE STRING "eBPF kernel state source: AUTO, ON or OFF")
set_property(CACHE TCPEDU_BPF PROPERTY STRINGS AUTO ON OFF)
set(TCPEDU_BPF_BTF /sys/kernel/btf/vmlinux CACHE FILEPATH "The kernel BTF that vmlinux.h is generated from")
string(TOUPPER "${TCPEDU_BPF}" _tcpedu_bpf_mode)
if(NOT _tcpedu_bpf_mode MATCHES "^(AUTO|ON|OFF)$")
  message(FATAL_ERROR "TCPEDU_BPF must be AUTO, ON or OFF, not '${TCPEDU_BPF}'")
endif()

set(_tcpedu_bpf_missing "")
if(_tcpedu_bpf_mode STREQUAL "OFF")
  list(APPEND _tcpedu_bpf_missing "TCPEDU_BPF=OFF")
else()
  find_program(TCPEDU_BPF_CLANG NAMES clang clang-16 clang-15 clang-14 NO_CMAKE_SYSTEM_PATH)
  find_program(TCPEDU_BPFTOOL NAMES bpftool NO_CMAKE_SYSTEM_PATH)
  pkg_check_modules(LIBBPF QUIET IMPORTED_TARGET libbpf)
  if(NOT TCPEDU_BPF_CLANG)
    list(APPEND _tcpedu_bpf_missing "clang not found in PATH")
  else()
    execute_process(COMMAND ${TCPEDU_BPF_CLANG} -target bpf -x c -c /dev/null -o /dev/null
                    RESULT_VARIABLE _tcpedu_bpf_clang_rc OUTPUT_QUIET ERROR_QUIET)
    if(NOT _tcpedu_bpf_clang_rc EQUAL 0)
      list(APPEND _tcpedu_bpf_missing "${TCPEDU_BPF_CLANG} cannot target bpf")
    endif()
  endif()
  if(NOT TCPEDU_BPFTOOL)
    list(APPEND _tcpedu_bpf_missing "bpftool not found in PATH")
  endif()
  if(NOT LIBBPF_FOUND)
    list(APPEND _tcpedu_bpf_missing "libbpf not found (pkg-config libbpf)")
  endif()
  if(NOT EXISTS "${TCPEDU_BPF_BTF}")
    list(APPEND _tcpedu_bpf_missing "no BTF at ${TCPEDU_BPF_BTF}")
  endif()
endif()
list(JOIN _tcpedu_bpf_missing ", " _tcpedu_bpf_reason)

if(_tcpedu_bpf_reason)
  if(_tcpedu_bpf_mode STREQUAL "ON")
    message(FATAL_ERROR "TCPEDU_BPF=ON, but: ${_tcpedu_bpf_reason}")
  endif()
  message(STATUS "eBPF state source: off (${_tcpedu_bpf_reason})")
  target_sources(tcpedud-core PRIVATE daemon/kernel-bpf.c)
  set_property(SOURCE daemon/kernel-bpf.c APPEND PROPERTY COMPILE_DEFINITIONS "TCPEDU_BPF_OFF_REASON=\"${_tcpedu_bpf_reason}\"")
  return()
endif()

if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|i.86|amd64|AMD64)$")
  set(_tcpedu_bpf_arch x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64)$")
  set(_tcpedu_bpf_arch arm64)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^ppc64")
  set(_tcpedu_bpf_arch powerpc)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^s390")
  set(_tcpedu_bpf_arch s390)
else()
  set(_tcpedu_bpf_arch ${CMAKE_SYSTEM_PROCESSOR})
endif()

set(_tcpedu_bpf_dir ${CMAKE_BINARY_DIR}/bpf)
set(_tcpedu_bpf_includes ${LIBBPF_INCLUDE_DIRS}) # bpf/bpf_helpers.h and friends, where libbpf is not in /usr/include
list(TRANSFORM _tcpedu_bpf_includes PREPEND -I)
set(_tcpedu_bpf_src ${CMAKE_SOURCE_DIR}/daemon/bpf)
file(MAKE_DIRECTORY ${_tcpedu_bpf_dir})
# bpftool writes to stdout: each output goes to a temporary file first, so a failure leaves no
# truncated header behind that make would take as up to date.
add_custom_command(OUTPUT ${_tcpedu_bpf_dir}/vmlinux.h
  COMMAND sh -c "\"$0\" btf dump file \"$1\" format c > \"$2.tmp\" && mv \"$2.tmp\" \"$2\""
          ${TCPEDU_BPFTOOL} ${TCPEDU_BPF_BTF} ${_tcpedu_bpf_dir}/vmlinux.h
  COMMENT "Generating vmlinux.h from ${TCPEDU_BPF_BTF}"
  VERBATIM)
add_custom_command(OUTPUT ${_tcpedu_bpf_dir}/tcpstate.bpf.o
  COMMAND ${TCPEDU_BPF_CLANG} -target bpf -g -O2 -D__TARGET_ARCH_${_tcpedu_bpf_arch}
          -Wall -Wextra -Wno-unused-parameter -Werror
          -I${_tcpedu_bpf_dir} -I${_tcpedu_bpf_src} ${_tcpedu_bpf_includes}
          -c ${_tcpedu_bpf_src}/tcpstate.bpf.c -o ${_tcpedu_bpf_dir}/tcpstate.bpf.o
  DEPENDS ${_tcpedu_bpf_src}/tcpstate.bpf.c ${_tcpedu_bpf_src}/tcpstate-event.h ${_tcpedu_bpf_dir}/vmlinux.h
  COMMENT "Compiling the BPF object tcpstate.bpf.o"
  VERBATIM)
# bpftool gen object links the object alone, which drops its DWARF: the skeleton embeds 80 KiB, not 700.
add_custom_command(OUTPUT ${_tcpedu_bpf_dir}/tcpstate.skel.h
  COMMAND ${TCPEDU_BPFTOOL} gen object ${_tcpedu_bpf_dir}/tcpstate.o ${_tcpedu_bpf_dir}/tcpstate.bpf.o
  COMMAND sh -c "\"$0\" gen skeleton \"$1\" name tcpstate_bpf > \"$2.tmp\" && mv \"$2.tmp\" \"$2\""
          ${TCPEDU_BPFTOOL} ${_tcpedu_bpf_dir}/tcpstate.o ${_tcpedu_bpf_dir}/tcpstate.skel.h
  DEPENDS ${_tcpedu_bpf_dir}/tcpstate.bpf.o
  COMMENT "Generating the BPF skeleton tcpstate.skel.h"
  VERBATIM)

message(STATUS "eBPF state source: on (${TCPEDU_BPF_CLANG}, ${TCPEDU_BPFTOOL}, libbpf ${LIBBPF_VERSION}, ${TCPEDU_BPF_BTF})")
target_sources(tcpedud-core PRIVATE daemon/kernel-bpf.c ${_tcpedu_bpf_dir}/tcpstate.skel.h)
# A system include directory: the generated skeleton is bpftool's code, not held to our warnings.
target_include_directories(tcpedud-core SYSTEM PRIVATE ${_tcpedu_bpf_dir} ${_tcpedu_bpf_src})
target_compile_definitions(tcpedud-core PUBLIC HAVE_BPF=1)
target_link_libraries(tcpedud-core PUBLIC PkgConfig::LIBBPF)
set(TCPEDU_BPF_ENABLED ON)
