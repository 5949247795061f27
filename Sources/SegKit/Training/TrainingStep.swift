import SegKitEngine

/// One optimisation step on a batch whose forward pass has run, as Keras's
/// `train_step` (keras/src/backend/tensorflow/trainer.py): the loss and
/// dL/d(logits) of the graph's first output, the gradients zeroed and made by
/// backpropagation, then the optimizer's update of `parameters`. The one step
/// `Trainer.fit` and `segkit bench` share; with a profiler on the graph, the
/// loss and the update are timed beside the layers.
public struct TrainingStep {
    /// The network; its first output is the logits (N, H, W, K) the loss reads.
    public let graph: Graph
    /// Updates `parameters` from their gradients.
    public let optimizer: Optimizer
    /// The parameters the optimizer updates (the graph's trainable ones).
    public let parameters: [Parameter]
    /// The loss's name in a profile, e.g. "loss (softmax cross-entropy)".
    public let lossName: String

    /// A step of `graph` updating `parameters` with `optimizer`; `lossName` labels the loss in a profile.
    public init(graph: Graph, optimizer: Optimizer, parameters: [Parameter], lossName: String = "loss") {
        (self.graph, self.optimizer, self.parameters, self.lossName) = (graph, optimizer, parameters, lossName)
    }

    /// Runs the step on `pass` (a `.training` forward pass of `graph`):
    /// `loss(logits)` gives the batch's loss and its gradient with respect to
    /// the logits (the shape of the graph's first output); `accept(loss)` may
    /// refuse the loss (e.g. not finite) before any parameter changes.
    ///
    /// - Returns: the loss.
    /// - Throws: what `loss` or `accept` throws; `EngineError` from the backward pass.
    @discardableResult
    public func callAsFunction(_ pass: ForwardPass, loss: (Tensor) throws -> (loss: Float, gradient: Tensor),
                               accept: (Float) throws -> Void = { _ in }) throws -> Float {
        let (value, gradient) = try timed(lossName) { try loss(pass.outputs(of: graph)[0]) }
        try accept(value)
        graph.zeroGradients()
        _ = try graph.backward(pass, outputGradients: [gradient])
        timed("optimizer (\(type(of: optimizer)))") { optimizer.step(parameters) }
        return value
    }

    private func timed<R>(_ name: String, _ body: () throws -> R) rethrows -> R {
        try graph.profiler?.measure(name, body) ?? body()
    }
}
