// Running a model partly on the native engine and partly on ONNX Runtime.
export { PartitionedBackend, type PartitionedOptions } from './partitioned-backend.js';
export { partitionModel, type Partition, type PlannedSegment, type NodePlacement } from './partitioner.js';
export { cutSegments, type Segment, type Side } from './segments.js';
export { fixedInputShapes, probeTensors, withConstantsAsInitializers } from './submodel.js';
export { describePartition, type PartitionReport } from './describe.js';
