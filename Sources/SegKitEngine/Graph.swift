/// A directed acyclic graph of named layer applications: SegKit's one model
/// representation from import to export.
///
/// Nodes are stored in topological order by construction (a node can only
/// consume nodes added before it). A node may have several inputs, a node's
/// output may feed several consumers, and the graph may have several outputs.
public final class Graph {
    /// One application of a layer: a node of the graph.
    public struct Node {
        /// The node's name, unique in the graph (the layer's name unless given).
        public let name: String
        /// The layer applied; one layer may be applied at several nodes.
        public let layer: Layer
        /// Indices of the nodes whose outputs feed this node, in order.
        public let inputs: [Int]
    }

    /// Every node in topological order (inputs first).
    public private(set) var nodes: [Node] = []
    /// When set, every node's forward and backward time is recorded here.
    public var profiler: LayerProfiler?
    /// The graph inputs' node indices, in the order `forward` takes its inputs.
    public private(set) var inputIndices: [Int] = []
    /// The graph outputs' node indices, in the order `forward` returns them.
    public var outputIndices: [Int] = []
    private var indexByName: [String: Int] = [:]
    /// The execution plan's BatchNormalization-folded weights, made on first use.
    let foldedWeights = FoldedWeightCache()
    /// The forward passes' plans, by kind of pass; emptied when a node is added.
    let plans = ExecutionPlans()

    /// An empty graph: add inputs with `addInput`, then layers with `add`.
    public init() {}

    /// Adds a graph input named `name` with declared `shape`, batch first
    /// (`[nil, H, W, C]` for images; nil = any size); returns its node index.
    /// - Throws: `EngineError.graph` when a node already has this name.
    @discardableResult
    public func addInput(name: String, shape: StaticShape) throws -> Int {
        let index = try append(Node(name: name, layer: InputLayer(name: name, shape: shape), inputs: []))
        inputIndices.append(index)
        return index
    }

    /// Adds a layer applied to the outputs of `inputs`. The node takes the layer's
    /// name unless `nodeName` is given (a shared layer applied twice needs two).
    /// Returns the new node's index.
    /// - Throws: `EngineError.graph` for an input index that does not exist yet,
    ///   a wrong number of inputs for the layer, or a duplicate node name.
    @discardableResult
    public func add(_ layer: Layer, inputs: [Int], nodeName: String? = nil) throws -> Int {
        let name = nodeName ?? layer.name
        for i in inputs where i < 0 || i >= nodes.count {
            throw EngineError.graph("node '\(name)' consumes node #\(i), which does not exist (yet)")
        }
        if let arity = layer.inputArity {
            guard inputs.count == arity else {
                throw EngineError.graph("\(layer.kind) '\(name)' takes \(arity) input(s), given \(inputs.count)")
            }
        } else if inputs.count < 2 {
            throw EngineError.graph("\(layer.kind) '\(name)' merges two or more inputs, given \(inputs.count)")
        }
        return try append(Node(name: name, layer: layer, inputs: inputs))
    }

    private func append(_ node: Node) throws -> Int {
        guard indexByName[node.name] == nil else {
            throw EngineError.graph("two nodes are named '\(node.name)'")
        }
        nodes.append(node)
        indexByName[node.name] = nodes.count - 1
        plans.removeAll()
        return nodes.count - 1
    }

    /// The index of the node named `name`, or nil.
    public func index(of name: String) -> Int? { indexByName[name] }

    /// A graph with the same nodes, inputs and outputs whose layers are copies
    /// (`Layer.copy()`): a layer applied at several nodes stays one shared layer
    /// in the copy. Freezing, unfreezing or training the copy leaves this graph
    /// as it was, so surgery can start from one imported classifier many times.
    ///
    /// - Throws: `EngineError.invalidArgument` for a layer that cannot be copied.
    public func copy() throws -> Graph {
        let g = Graph()
        var copies: [ObjectIdentifier: Layer] = [:]
        for node in nodes {
            if node.layer is InputLayer {
                g.inputIndices.append(try g.append(Node(name: node.name, layer: try node.layer.copy(), inputs: [])))
            } else {
                let id = ObjectIdentifier(node.layer)
                let layer = try copies[id] ?? node.layer.copy()
                copies[id] = layer
                try g.add(layer, inputs: node.inputs, nodeName: node.name)
            }
        }
        g.outputIndices = outputIndices
        return g
    }

    /// Every distinct layer, in the order first applied.
    public var layers: [Layer] {
        var seen = Set<ObjectIdentifier>()
        return nodes.compactMap { seen.insert(ObjectIdentifier($0.layer)).inserted ? $0.layer : nil }
    }

    /// Every distinct parameter (a shared layer's parameters once).
    public var parameters: [Parameter] { layers.flatMap(\.parameters) }
    /// The distinct parameters that train now (what the optimizer updates).
    public var trainableParameters: [Parameter] { parameters.filter(\.isTrainable) }

    /// Static shapes of every node's output, from the inputs' declared shapes.
    /// - Throws: `EngineError.shapeMismatch` (or `.invalidArgument`) from the first
    ///   layer whose `outputShape(for:)` rejects its inputs.
    public func staticShapes() throws -> [StaticShape] {
        var shapes: [StaticShape] = []
        shapes.reserveCapacity(nodes.count)
        for node in nodes {
            if let input = node.layer as? InputLayer {
                shapes.append(input.shape)
            } else {
                shapes.append(try node.layer.outputShape(for: node.inputs.map { shapes[$0] }))
            }
        }
        return shapes
    }

    /// For each node: does its output depend on a trainable parameter? Only those
    /// nodes need a gradient, so a frozen prefix of the graph costs no backward work.
    public func dependsOnTrainable(alsoInputs: Bool) -> [Bool] {
        var flags = [Bool](repeating: false, count: nodes.count)
        for (i, node) in nodes.enumerated() {
            if node.layer is InputLayer {
                flags[i] = alsoInputs
            } else {
                flags[i] = node.layer.parameters.contains(where: \.isTrainable)
                    || node.inputs.contains { flags[$0] }
            }
        }
        return flags
    }
}

/// A graph input: checks that the data fits the declared shape.
public final class InputLayer: Layer {
    /// The declared input shape, batch first; nil dimensions take any size.
    public let shape: StaticShape

    init(name: String, shape: StaticShape) {
        self.shape = shape
        super.init(name: name)
    }

    override func makeCopy() throws -> Layer {
        InputLayer(name: name, shape: shape)
    }

    public override var inputArity: Int? { 0 }

    /// The declared shape (an input has no input shapes).
    /// - Throws: nothing (`throws` is `Layer`'s signature).
    public override func outputShape(for inputShapes: [StaticShape]) throws -> StaticShape { shape }

    func check(_ tensor: Tensor) throws {
        let fits = tensor.rank == shape.count && tensor.shape.allSatisfy { $0 > 0 }
            && zip(tensor.shape, shape).allSatisfy { actual, declared in declared == nil || declared == actual }
        guard fits else {
            throw EngineError.shapeMismatch(
                op: "input '\(name)'", expected: "shape \(describe(shape)) with no empty axis", found: "\(tensor.shape)")
        }
    }
}
