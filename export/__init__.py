"""Export: deploy wrapper, ONNX export with manifest and parity, TensorRT lint, builder and engine cache."""
