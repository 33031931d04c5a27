"""WGSL kernel generators for the wgpu backend (matmul, fused elementwise)."""
