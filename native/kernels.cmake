# The kernel library. Each instruction-set file gets its own compile flags so the
# addon still loads on a CPU without that instruction set; dispatch is at run time.
set(EDGE_KERNEL_DIR ${CMAKE_CURRENT_LIST_DIR}/src/kernels)
file(GLOB EDGE_KERNEL_COMMON ${EDGE_KERNEL_DIR}/*.cc)
add_library(edge_kernels STATIC ${EDGE_KERNEL_COMMON})
target_include_directories(edge_kernels PUBLIC ${CMAKE_CURRENT_LIST_DIR}/src)
