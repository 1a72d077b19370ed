# The kernel library. Each instruction-set file gets its own compile flags so the
# addon still loads on a CPU without that instruction set; dispatch is at run time.
# Every file compiles on every host: the ISA bodies are guarded with #if on the target.
set(EDGE_KERNEL_DIR ${CMAKE_CURRENT_LIST_DIR}/src/kernels)
file(GLOB EDGE_KERNEL_COMMON CONFIGURE_DEPENDS ${EDGE_KERNEL_DIR}/*.cc)
add_library(edge_kernels STATIC ${EDGE_KERNEL_COMMON})
target_include_directories(edge_kernels PUBLIC ${CMAKE_CURRENT_LIST_DIR}/src)
# Identical float32 requantization in every variant needs no contraction into FMA.
target_compile_options(edge_kernels PRIVATE -ffp-contract=off)
# Softmax's output loops (multiply, clamp, round, store a byte) vectorize only where float
# comparisons may be taken not to trap; the values are the same (no fast-math). YOLO's DFL
# softmax, 16 x 8400 bytes: 0.37 -> 0.2 ms.
set_source_files_properties(${EDGE_KERNEL_DIR}/softmax.cc PROPERTIES COMPILE_OPTIONS "-fno-trapping-math")
find_package(Threads REQUIRED)
target_link_libraries(edge_kernels PUBLIC Threads::Threads)

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64|amd64")
  set_source_files_properties(${EDGE_KERNEL_DIR}/gemm_avx2.cc ${EDGE_KERNEL_DIR}/gemm_avx2_q7.cc
    PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma;-mbmi2")
  set_source_files_properties(${EDGE_KERNEL_DIR}/qmatmul_avx2.cc PROPERTIES COMPILE_OPTIONS "-mavx2")
  # The AVX2+FMA small-shape families (also used by the VNNI variants' tables).
  set_source_files_properties(${EDGE_KERNEL_DIR}/conv_direct_avx2.cc ${EDGE_KERNEL_DIR}/quantize_avx2.cc
    ${EDGE_KERNEL_DIR}/pool_avx2.cc ${EDGE_KERNEL_DIR}/dw_row_avx2.cc PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma")
  set_source_files_properties(${EDGE_KERNEL_DIR}/copy_avx2.cc ${EDGE_KERNEL_DIR}/eltwise_avx2.cc PROPERTIES COMPILE_OPTIONS "-mavx2")
  set_source_files_properties(${EDGE_KERNEL_DIR}/gemm_avxvnni.cc PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma;-mavxvnni")
  set_source_files_properties(${EDGE_KERNEL_DIR}/gemm_avx512vnni.cc ${EDGE_KERNEL_DIR}/dw_row_avx512.cc PROPERTIES
    COMPILE_OPTIONS "-mavx512f;-mavx512bw;-mavx512vl;-mavx512dq;-mavx512vnni;-mfma")
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set_source_files_properties(${EDGE_KERNEL_DIR}/gemm_dotprod.cc PROPERTIES COMPILE_OPTIONS "-march=armv8.2-a+dotprod")
endif()
