import SegKitSupport
import ArgumentParser
import SegKit
import SegKitEngine
import SegKitKeras

/// `segkit convolutionalize`: the classifier as a fully convolutional class-map net.
struct Convolutionalize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Turn a classifier's Dense head into convolutions; write the class-map model as a Keras file.")

    @OptionGroup var model: ModelOptions

    @Option(help: "Output Keras file: .keras (Keras 3 archive) or .h5 (legacy HDF5).")
    var out: String

    @Option(help: "The classifier's output to convert, for a model with several.")
    var output: String?

    func validate() throws {
        guard out.hasSuffix(".keras") || out.hasSuffix(".h5") else { throw ValidationError("--out \(out): write .keras (Keras 3) or .h5 (legacy HDF5)") }
    }

    func run() throws {
        let m = try model.load()
        let (fcn, stages, classes) = try naming(model.model) {
            let classifier = try output.map { try selectingOutput(m.graph, named: $0) } ?? m.graph
            return (try convolutionalize(classifier), try encoderStages(classifier), try segmentationClasses(of: classifier))
        }
        var metadata = SegmenterMetadata(classes: classes)
        metadata.source = model.model
        metadata.stages = stages.map { .init(stride: $0.stride, layer: $0.name) }
        try KerasWriter(graph: fcn, name: m.name + "_fcn", metadata: metadata.json).write(to: out)
        let shape = try fcn.staticShapes()[fcn.outputIndices[0]]
        print("wrote \(out): \(m.name) convolutionalized, output \(describe(shape)) at 1/\(stages.last?.stride ?? 1) of the input size")
    }
}
