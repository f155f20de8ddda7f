# SPDX-License-Identifier: MIT
# cmake -DBUILD_DIR=... -DPROBES="target=header;..." -P check.cmake
# Builds each probe target; each must fail, and fail because the header
# of the layer above is not on its include path.
foreach(_p IN LISTS PROBES)
  string(REPLACE "=" ";" _f "${_p}")
  list(GET _f 0 _target)
  list(GET _f 1 _hdr)
  execute_process(COMMAND ${CMAKE_COMMAND} --build ${BUILD_DIR}
                          --target ${_target}
                  RESULT_VARIABLE _rc OUTPUT_VARIABLE _out
                  ERROR_VARIABLE _out)
  if(_rc EQUAL 0)
    message(FATAL_ERROR "${_target} compiled: an include of ${_hdr} runs "
            "upward past its layer; fix the target's include directories")
  endif()
  string(REPLACE "." "\\." _re "${_hdr}")
  if(NOT _out MATCHES "${_re}: No such file")
    message(FATAL_ERROR "${_target} failed for another reason than the "
            "missing ${_hdr}:\n${_out}")
  endif()
  message(STATUS "${_target}: ${_hdr} is out of reach, as it must be")
endforeach()
