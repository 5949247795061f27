// The per-channel scale γ and offset β LayerNormalization and GroupNormalization
// apply after normalizing (Keras's `scale` and `center`), forward and backward.

/// A normalization's output x̂·γ + β per channel (the last axis); `x̂` itself
/// when the layer has neither (`scale=False`, `center=False`).
func scaledAndOffset(_ normalized: Tensor, gamma: Parameter?, beta: Parameter?) -> Tensor {
    guard gamma != nil || beta != nil else { return normalized }
    return perChannelAffine(normalized, scale: gamma?.value.scalars ?? [1], offset: beta?.value.scalars ?? [0])
}

/// The gradients of `scaledAndOffset` for those of γ and β that train:
/// dγ = Σ dy·x̂ and dβ = Σ dy per channel over every position.
func accumulateScaleAndOffsetGradients(gamma: Parameter?, beta: Parameter?, dy: [Float], normalized xhat: [Float], channels c: Int) {
    if let gamma, gamma.isTrainable {
        var s = [Float](repeating: 0, count: c)
        for i in 0..<dy.count { s[i % c] += dy[i] * xhat[i] }
        gamma.accumulateGradient(Tensor.assembled(shape: [c], scalars: s))
    }
    if let beta, beta.isTrainable {
        var s = [Float](repeating: 0, count: c)
        for i in 0..<dy.count { s[i % c] += dy[i] }
        beta.accumulateGradient(Tensor.assembled(shape: [c], scalars: s))
    }
}
