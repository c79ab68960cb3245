mod common;
mod fixtures;
mod isnet;
mod onnx;
mod onnx_unavailable;
mod thresholds;
mod tools;
