"""RustyASG's GPU backend: WGSL kernels run through wgpu (Vulkan, Metal, D3D12).

Nothing GPU-related happens at import; the device is acquired on first use
(:func:`rustyasg.wgpu.device.get_context`).
"""

from rustyasg.core.parts import distribution_version as _distribution_version  # noqa: E402

__version__ = _distribution_version("rustyasg-wgpu")  # from the package metadata
