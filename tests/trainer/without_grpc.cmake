# billnet-trainer as built without gRPC (trainer/CMakeLists.txt): it trains
# (its config command works) and says plainly that `job` and `serve` need the
# service, exiting 3.
execute_process(COMMAND ${TRAINER} config RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR NOT out MATCHES "\"stages\"")
  message(FATAL_ERROR "config: exit ${rc}, output: ${out}${err}")
endif()
foreach(args "job;list" "serve")
  execute_process(COMMAND ${TRAINER} ${args} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 3 OR NOT err MATCHES "this build has no gRPC")
    message(FATAL_ERROR "${args}: want exit 3 and 'this build has no gRPC', got exit ${rc}: ${out}${err}")
  endif()
endforeach()
