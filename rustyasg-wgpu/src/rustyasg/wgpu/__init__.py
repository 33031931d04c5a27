"""RustyASG's GPU backend: WGSL kernels run through wgpu (Vulkan, Metal, D3D12).

Nothing GPU-related happens at import; the device is acquired on first use
(:func:`rustyasg.wgpu.device.get_context`).
"""
