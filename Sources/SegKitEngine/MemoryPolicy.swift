import CKernels

/// How SegKit asks the C allocator to treat the large, short-lived buffers of
/// training and inference (activations, gradients, patch matrices).
///
/// glibc serves blocks above its mmap threshold with fresh mappings and gives
/// them back to the kernel on free, so every step paid a page fault (and the
/// kernel's page clearing) for each 4 KiB of every activation: `segkit bench`
/// measured an element-wise Add of two 23 MB tensors at 17 ms. Raising the
/// threshold to glibc's maximum and never trimming keeps freed blocks in the
/// heap for the next step; the cost is that the process keeps its peak
/// footprint until it exits, which is the figure that matters for a run anyway.
public enum MemoryPolicy {
    /// Applies the policy once (later calls do nothing); whether glibc accepted it.
    @discardableResult
    public static func keepFreedBlocks() -> Bool { applied }

    private static let applied: Bool = segkit_keep_freed_blocks() == 1
}
