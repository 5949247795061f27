import ArgumentParser

/// `segkit demo`: the main job on the built-in running example.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run SegKit's main job on the built-in Fashion-MNIST canvas example.")

    func run() throws {
        print(versionText())
        print("""
        The demo will, once the importer, recipes and trainer are in place:
          1. import the Keras classifier shipped in Recipes/demo/ and print its summary;
          2. generate 128x128 canvases of Fashion-MNIST items (Debian's dataset-fashion-mnist);
          3. compare a weightless heatmap segmenter, a frozen-encoder transposed-skips
             segmenter and a from-scratch U-Net at a few labelled-set sizes, and write a report.
        Available now: the float32 tensor engine (SegKitEngine) with checked gradients.
        """)
    }
}
