import Foundation
import SegKitEngine

/// One batch of equally sized samples, transformed and input-scaled, before it
/// becomes a tensor: pixels N·H·W·C, masks N·H·W.
struct SampleBatch: Sendable {
    var count: Int, height: Int, width: Int, channels: Int
    var pixels: [Float]
    var masks: [Int32]
}

/// The training data pipeline (the order of the reference segmentation
/// toolkits): decode → rescale (`--augment scale`) → random crop (`--crop`,
/// padding with ignored pixels) → flip/shift/elastic → input scaling. Every
/// random choice comes from (seed, epoch, step, sample), so a run is the same
/// however the work is spread over threads.
struct TrainingBatches: Sendable {
    let data: any LabelledImages
    let config: TrainingConfig
    /// The label of padding pixels.
    let ignoreLabel: Int32

    /// Whether a batch can hold any samples together: all share one size after the pipeline.
    var fixedSize: (height: Int, width: Int)? { config.crop ?? (config.scaleRange == nil ? data.uniformSize : nil) }

    /// The batches of `epoch`: a shuffled order cut into batches when every batch
    /// comes out one size (one image per batch for rescaled whole images); otherwise size buckets (samples of one size together,
    /// shuffled within, batches in shuffled order), so mixed sizes train
    /// without cropping. The number of batches is the same every epoch.
    func plan(epoch: Int) -> [[Int]] {
        var g = SeededGenerator(seed: config.seed ^ (UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15) ^ 1)
        _ = g.next()
        // Rescaled whole images all differ in size: one per batch.
        let b = config.scaleRange != nil && config.crop == nil ? 1 : max(config.batchSize, 1)
        if fixedSize != nil || b == 1 {
            let order = Array(0..<data.count).shuffled(using: &g)
            return stride(from: 0, to: order.count, by: b).map { Array(order[$0..<min($0 + b, order.count)]) }
        }
        return Self.buckets(data, batch: b, shuffle: &g)
    }

    /// Indices grouped by size, cut into batches of at most `batch`.
    static func buckets(_ data: any LabelledImages, batch: Int, shuffle g: inout SeededGenerator) -> [[Int]] {
        let batch = max(batch, 1)
        var bySize: [Int: [Int]] = [:]
        for i in 0..<data.count { let s = data.size(of: i); bySize[s.height << 32 | s.width, default: []].append(i) }
        var batches: [[Int]] = []
        for key in bySize.keys.sorted() {
            let members = bySize[key]!.shuffled(using: &g)
            batches += stride(from: 0, to: members.count, by: batch).map { Array(members[$0..<min($0 + batch, members.count)]) }
        }
        return batches.shuffled(using: &g)
    }

    /// Batches for inference in data order where sizes allow: runs of equally sized samples, cut at `batch`.
    static func inferenceBatches(_ data: any LabelledImages, batch: Int) -> [[Int]] {
        let batch = max(batch, 1)
        var out: [[Int]] = [], current: [Int] = []
        for i in 0..<data.count {
            if let first = current.first, current.count == batch || data.size(of: first) != data.size(of: i) { out.append(current); current = [] }
            current.append(i)
        }
        if !current.isEmpty { out.append(current) }
        return out
    }

    /// Samples `indices` through the pipeline (`augment` false: as they are, for
    /// evaluation and the feature cache), decoded on the machine's cores.
    func assemble(_ indices: [Int], epoch: Int, step: Int, augment: Bool) throws -> SampleBatch {
        let results = parallelMap(Array(indices.enumerated())) { position, i -> Result<LabelledImage, DataError> in
            do {
                var s = try data.sample(i)
                if augment {
                    var g = generator(epoch: epoch, step: step, position: position, purpose: 2)
                    transform(&s, rng: &g)
                }
                return .success(s)
            } catch let e as DataError { return .failure(e) } catch { return .failure(.badSample("sample \(i)", "\(error)")) }
        }
        var batch = SampleBatch(count: 0, height: 0, width: 0, channels: data.channels, pixels: [], masks: [])
        for r in results {
            let s = try r.get()
            if batch.count == 0 { (batch.height, batch.width) = (s.height, s.width) }
            guard (s.height, s.width) == (batch.height, batch.width) else {
                throw DataError.badSample(s.name, "is \(s.width)x\(s.height) in a batch of \(batch.width)x\(batch.height) (a SegKit bug: batches are planned by size)")
            }
            batch.pixels += data.isByteValued ? s.pixels.map(config.inputScale.apply) : s.pixels
            batch.masks += s.mask
            batch.count += 1
        }
        return batch
    }

    /// The random choices for the sample at `position` of batch `step` of
    /// `epoch`: the same whatever thread asks (`purpose` 2: augmentation,
    /// 3: a cached crop's origin).
    func generator(epoch: Int, step: Int, position: Int, purpose: UInt64) -> SeededGenerator {
        var g = SeededGenerator(seed: config.seed ^ (UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15) ^ (UInt64(step) &* 0xC2B2_AE3D_27D4_EB4F)
                                ^ (UInt64(position) &* 0x1656_67B1_9E37_79F9) ^ purpose)
        _ = g.next()
        return g
    }

    /// Rescale, crop, then the geometric augmentations, on one sample.
    func transform(_ s: inout LabelledImage, rng g: inout SeededGenerator) {
        if let range = config.scaleRange {
            let f = range.lowerBound + (range.upperBound - range.lowerBound) * g.nextUniform()
            rescale(&s, factor: f)
        }
        if let crop = config.crop { randomCrop(&s, height: crop.height, width: crop.width, rng: &g) }
        if !config.augment.isEmpty {
            Augmentation.apply(config.augment, pixels: &s.pixels, mask: &s.mask, height: s.height, width: s.width, channels: s.channels, rng: &g)
        }
    }

    /// Bilinear image (half-pixel centres, as `tf.image.resize`), nearest-neighbour mask.
    func rescale(_ s: inout LabelledImage, factor: Float) {
        let h = max(1, Int((Float(s.height) * factor).rounded())), w = max(1, Int((Float(s.width) * factor).rounded()))
        guard (h, w) != (s.height, s.width) else { return }
        let sy = Float(s.height) / Float(h), sx = Float(s.width) / Float(w), c = s.channels
        var pixels = [Float](repeating: 0, count: h * w * c), mask = [Int32](repeating: 0, count: h * w)
        for y in 0..<h {
            let fy = max(0, (Float(y) + 0.5) * sy - 0.5)
            let y0 = min(Int(fy), s.height - 1), y1 = min(y0 + 1, s.height - 1), ty = fy - Float(y0)
            let my = min(Int((Float(y) + 0.5) * sy), s.height - 1)
            for x in 0..<w {
                let fx = max(0, (Float(x) + 0.5) * sx - 0.5)
                let x0 = min(Int(fx), s.width - 1), x1 = min(x0 + 1, s.width - 1), tx = fx - Float(x0)
                for k in 0..<c {
                    let a = s.pixels[(y0 * s.width + x0) * c + k], b = s.pixels[(y0 * s.width + x1) * c + k]
                    let d = s.pixels[(y1 * s.width + x0) * c + k], e = s.pixels[(y1 * s.width + x1) * c + k]
                    pixels[(y * w + x) * c + k] = (1 - ty) * ((1 - tx) * a + tx * b) + ty * ((1 - tx) * d + tx * e)
                }
                mask[y * w + x] = s.mask[my * s.width + min(Int((Float(x) + 0.5) * sx), s.width - 1)]
            }
        }
        (s.height, s.width, s.pixels, s.mask) = (h, w, pixels, mask)
    }

    /// A uniformly placed `height` x `width` window; an image smaller than it is
    /// first padded (zeros, mask `ignoreLabel`) at a random position, so the loss
    /// never sees the padding.
    func randomCrop(_ s: inout LabelledImage, height: Int, width: Int, rng g: inout SeededGenerator) {
        let c = s.channels
        let top = s.height >= height ? -Int.random(in: 0...(s.height - height), using: &g) : Int.random(in: 0...(height - s.height), using: &g)
        let left = s.width >= width ? -Int.random(in: 0...(s.width - width), using: &g) : Int.random(in: 0...(width - s.width), using: &g)
        // Output pixel (y, x) is source pixel (y − top, x − left).
        var pixels = [Float](repeating: 0, count: height * width * c), mask = [Int32](repeating: ignoreLabel, count: height * width)
        for y in 0..<height {
            let sy = y - top
            guard sy >= 0, sy < s.height else { continue }
            for x in 0..<width {
                let sx = x - left
                guard sx >= 0, sx < s.width else { continue }
                mask[y * width + x] = s.mask[sy * s.width + sx]
                for k in 0..<c { pixels[(y * width + x) * c + k] = s.pixels[(sy * s.width + sx) * c + k] }
            }
        }
        (s.height, s.width, s.pixels, s.mask) = (height, width, pixels, mask)
    }
}

/// Produces items 0..<count on a background thread, at most `depth` ahead of the
/// consumer: decoding the next batches while the engine computes this one, with
/// memory bounded by `depth` batches.
final class Prefetcher<T: Sendable>: @unchecked Sendable {
    private let condition = NSCondition()
    private var ready: [Int: Result<T, Error>] = [:]
    private var consumed = 0
    private var cancelled = false
    private let depth: Int

    init(count: Int, depth: Int = 2, produce: @escaping @Sendable (Int) throws -> T) {
        self.depth = max(1, depth)
        let thread = Thread { [self] in
            for i in 0..<count {
                condition.lock()
                while !cancelled && i >= consumed + self.depth { condition.wait() }
                let stop = cancelled
                condition.unlock()
                if stop { return }
                let r = Result { try produce(i) }
                condition.lock()
                ready[i] = r
                condition.broadcast()
                condition.unlock()
            }
        }
        thread.stackSize = 8 << 20
        thread.start()
    }

    /// Item `i` (called with 0, 1, 2, … in order), waiting for it if needed.
    ///
    /// - Throws: whatever producing it threw.
    func take(_ i: Int) throws -> T {
        condition.lock()
        defer { condition.unlock() }
        while ready[i] == nil { condition.wait() }
        let r = ready.removeValue(forKey: i)!
        consumed = i + 1
        condition.broadcast()
        return try r.get()
    }

    /// Stops producing (the thread ends after the item in hand). A consumer that
    /// stops early must call it: the thread holds the prefetcher until it ends.
    func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }
}
