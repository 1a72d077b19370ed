# The native int8 inference engine (plan executor) on top of the kernel library.
file(GLOB EDGE_ENGINE_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/src/engine/*.cc)
add_library(edge_engine STATIC ${EDGE_ENGINE_SOURCES})
target_include_directories(edge_engine PUBLIC ${CMAKE_CURRENT_LIST_DIR}/src)
target_link_libraries(edge_engine PUBLIC edge_kernels)
find_package(Threads REQUIRED)
target_link_libraries(edge_engine PUBLIC Threads::Threads)

# The 16-bit element-wise steps reproduce ONNX Runtime's float32 DequantizeLinear -> op ->
# QuantizeLinear one operation at a time; a fused multiply-add (GCC contracts on aarch64) would
# round differently. Their loops select and clamp without branches only when float operations
# are not treated as trapping (nothing here reads the floating-point exception flags).
set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/src/engine/steps_a16.cc ${CMAKE_CURRENT_LIST_DIR}/src/engine/steps_a16_float.cc
  PROPERTIES COMPILE_OPTIONS "-ffp-contract=off;-fno-trapping-math")
