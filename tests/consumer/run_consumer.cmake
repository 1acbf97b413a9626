# Installs the faiss_flash build in BUILD_DIR into WORK_DIR/prefix, builds the
# consumer project in SOURCE_DIR against it and runs it, then the installed
# faiss-flash tool.
file(REMOVE_RECURSE ${WORK_DIR})
function(run)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGV}")
  endif()
endfunction()
run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix)
run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/build
    -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run(${WORK_DIR}/build/consumer)
# The command-line tool is installed with the package, with its plot script.
run(${WORK_DIR}/prefix/bin/faiss-flash kmeans --help)
if(NOT EXISTS ${WORK_DIR}/prefix/share/faiss_flash/plot_iterations.py)
  message(FATAL_ERROR "share/faiss_flash/plot_iterations.py not installed")
endif()
