import ArgumentParser
import SegKitEngine

@main
struct SegKitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "segkit",
        abstract: "Turn a trained Keras image classifier into a semantic segmenter.",
        version: versionText(),
        subcommands: [Inspect.self, Forward.self, Convolutionalize.self, Build.self, Train.self, Eval.self, Predict.self, Compare.self, ExportTraining.self, DataCommand.self, Bench.self, Demo.self, CheckModel.self, CheckData.self]
    )

    static func main() {
        // Every command reuses its activation buffers across steps (MemoryPolicy).
        MemoryPolicy.keepFreedBlocks()
        main(nil)
    }
}

/// The version line also says which OpenBLAS kernels are in use, because the
/// wrong ones make SegKit five times slower (see README, Performance).
func versionText() -> String {
    "segkit 0.1.0 (OpenBLAS core: \(BLAS.coreName), \(BLAS.threadCount) BLAS thread per call, \(Parallel.workers) engine worker(s))"
}
