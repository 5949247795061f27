import CHDF5
import Foundation
import HDF5
import SegKitEngine
import SegKitKeras
import ZIPFoundation

/// One fuzz case: `segkit ARGUMENTS` run in the case's own folder, which holds
/// its mutated inputs and receives its outputs.
struct FuzzCase {
    /// models, cli, data or segmenters.
    let corpus: String
    /// The mutation (bitflip, truncate, …, or the subcommand for command lines).
    let kind: String
    /// What was mutated: a fixture's name, or the command line itself.
    let label: String
    let arguments: [String]
    let directory: String
}

/// Seeded mutations of Keras files, each one a way real files get damaged or forged.
struct Mutator {
    let fixtures: String
    let work: String
    var rng: SeededGenerator

    /// (model, config) pairs the harness starts from: every format, small nets.
    static let seeds: [(String, String?)] = [
        ("plain_cnn.k2.h5", nil), ("plain_cnn.k3.h5", nil), ("plain_cnn.k3.keras", nil), ("residual.k3.keras", nil),
        ("plain_cnn.k3.weights.h5", "plain_cnn.k3.json"), ("zoo.k2.w.h5", "zoo.k2.json"), ("vgg.k2.h5", nil),
        ("nested.k2.h5", nil), ("plain_cnn.k2.weights.h5", "plain_cnn.k2.json"), ("zoo.k3.keras", nil),
    ]

    static let kinds = ["bitflip", "truncate", "attribute", "json", "dataset", "zip"]

    mutating func int(_ n: Int) -> Int { Int(rng.next() % UInt64(max(n, 1))) }

    /// A mutated model file run by `segkit forward` on its fixture's input.
    mutating func make(_ index: Int, directory: String) throws -> FuzzCase {
        let (model, config) = Self.seeds[int(Self.seeds.count)]
        let kind = Self.kinds[int(Self.kinds.count)]
        let ext = (model as NSString).pathExtension
        let out = "\(directory)/model.\(model.hasSuffix(".weights.h5") ? "weights.h5" : ext)"
        var configOut = config.map { _ in "\(directory)/config.json" }
        try? FileManager.default.removeItem(atPath: out)
        try FileManager.default.copyItem(atPath: "\(fixtures)/\(model)", toPath: out)
        if let config, let configOut {
            try? FileManager.default.removeItem(atPath: configOut)
            try FileManager.default.copyItem(atPath: "\(fixtures)/\(config)", toPath: configOut)
        }
        let isZip = model.hasSuffix(".keras")
        switch kind {
        case "bitflip": try bitflip(out)
        case "truncate": try truncate(out, zip: isZip)
        case "attribute" where !isZip: try attributeSurgery(out)
        case "json":
            if let configOut { try corruptJSONFile(configOut) } else if isZip { try rewriteZip(out, corrupting: "config.json") } else { try corruptModelConfig(out) }
        case "dataset" where !isZip: try redeclareDataset(out)
        case "zip" where isZip: try zipTrick(out)
        default: try bitflip(out)
        }
        if Bool.random(using: &rng) && configOut != nil && kind == "bitflip" { configOut = nil }  // also: weights without their config
        let net = model.components(separatedBy: ".k")[0], version = model.contains(".k2.") ? "k2" : "k3"
        let input = "\(fixtures)/\(net).\(version).expected.h5"
        return FuzzCase(corpus: "models", kind: kind, label: model,
                        arguments: ["forward", out, "--input", input, "--output", "\(directory)/out.h5"] + (configOut.map { ["--config", $0] } ?? []),
                        directory: directory)
    }

    mutating func bitflip(_ path: String) throws {
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        for _ in 0..<(1 + int(8)) {
            let i = int(data.count)
            data[i] ^= UInt8(1 << int(8))
        }
        try data.write(to: URL(fileURLWithPath: path))
    }

    /// Cut at a structural boundary: HDF5's superblock and aligned blocks, zip record signatures, or anywhere.
    mutating func truncate(_ path: String, zip: Bool) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        var cuts = [8, 48, 96, 512, 1024, 2048, 4096, data.count / 2, data.count - 1, data.count - 22]
        if zip {
            let bytes = [UInt8](data)
            for i in 0..<(bytes.count - 3) where bytes[i] == 0x50 && bytes[i + 1] == 0x4B && bytes[i + 2] < 8 { cuts += [i, i + 4, i + 30] }
        }
        cuts.append(int(data.count))
        let cut = max(0, min(data.count, cuts[int(cuts.count)]))
        try data.prefix(cut).write(to: URL(fileURLWithPath: path))
    }

    /// Deleted, swapped or rewritten attributes of a legacy Keras file.
    mutating func attributeSurgery(_ path: String) throws {
        let file = H5Fopen(path, segkit_h5f_acc_rdwr(), segkit_h5p_default())
        guard file >= 0 else { return }
        defer { H5Fclose(file) }
        let targets = ["/": ["model_config", "layer_names", "keras_version"], "/model_weights": ["layer_names"]]
        let choice = int(4)
        if choice == 0 {
            let (obj, names) = targets.randomElement(using: &rng)!
            let name = names[int(names.count)]
            _ = H5Adelete_by_name(file, obj, name, segkit_h5p_default())
        } else {
            // Rewrite a string attribute with something else: empty, huge count, numbers.
            let obj = ["/", "/model_weights"][int(2)]
            let name = ["model_config", "layer_names", "keras_version"][int(3)]
            _ = H5Adelete_by_name(file, obj, name, segkit_h5p_default())
            let g = H5Oopen(file, obj, segkit_h5p_default())
            guard g >= 0 else { return }
            defer { H5Oclose(g) }
            var dims: [hsize_t] = [hsize_t([0, 1, 100_000][int(3)])]
            let space = H5Screate_simple(1, &dims, nil)
            defer { H5Sclose(space) }
            let attr = H5Acreate2(g, name, segkit_h5t_native_int32(), space, segkit_h5p_default(), segkit_h5p_default())
            if attr >= 0 {
                var values = [Int32](repeating: 7, count: Int(dims[0]))
                if !values.isEmpty { H5Awrite(attr, segkit_h5t_native_int32(), &values) }
                H5Aclose(attr)
            }
        }
    }

    /// JSON damage: cut, deleted characters, numbers scaled or negated, classes renamed, nesting bombs.
    mutating func corruptJSON(_ text: String) -> String {
        var s = text
        switch int(6) {
        case 0: s = String(s.prefix(int(s.count)))
        case 1:
            for _ in 0..<(1 + int(20)) where !s.isEmpty { s.remove(at: s.index(s.startIndex, offsetBy: int(s.count))) }
        case 2:
            let replacement = ["1000000000", "-3", "0", "99999999999999999999", "1e300", "NaN", "\"x\""][int(7)]
            let numbers = s.ranges(of: /: [0-9]+/)
            if !numbers.isEmpty { s.replaceSubrange(numbers[int(numbers.count)], with: ": " + replacement) }
        case 3:
            let classes = s.ranges(of: /"class_name": "[A-Za-z0-9]+"/)
            let name = ["Lambda", "TFOpLambda", "MyLayer", "Functional", "InputLayer", ""][int(6)]
            if !classes.isEmpty { s.replaceSubrange(classes[int(classes.count)], with: "\"class_name\": \"\(name)\"") }
        case 4:
            let depth = [300, 5000, 100_000][int(3)]
            s = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        default:
            let keys = s.ranges(of: /"(inbound_nodes|layers|input_layers|output_layers|batch_shape|batch_input_shape|keras_history)"/)
            if !keys.isEmpty { s.replaceSubrange(keys[int(keys.count)], with: "\"zzz\"") }
        }
        return s
    }

    mutating func corruptJSONFile(_ path: String) throws {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        try corruptJSON(text).write(toFile: path, atomically: true, encoding: .utf8)
    }

    mutating func corruptModelConfig(_ path: String) throws {
        let text = (try? HDF5File(readingFrom: path).root.stringAttribute("model_config")) ?? ""
        try rewriteStringAttribute(path, "model_config", corruptJSON(text))
    }

    /// Replaces the root's string attribute `name` with `value`.
    func rewriteStringAttribute(_ path: String, _ name: String, _ value: String) throws {
        let file = H5Fopen(path, segkit_h5f_acc_rdwr(), segkit_h5p_default())
        guard file >= 0 else { return }
        defer { H5Fclose(file) }
        _ = H5Adelete_by_name(file, "/", name, segkit_h5p_default())
        let g = H5Oopen(file, "/", segkit_h5p_default())
        defer { H5Oclose(g) }
        let type = H5Tcopy(segkit_h5t_c_s1())
        H5Tset_size(type, segkit_h5t_variable())
        let space = H5Screate(H5S_SCALAR)
        let attr = H5Acreate2(g, name, type, space, segkit_h5p_default(), segkit_h5p_default())
        value.withCString { c in
            var p: UnsafePointer<CChar>? = c
            H5Awrite(attr, type, &p)
        }
        H5Aclose(attr); H5Sclose(space); H5Tclose(type)
    }

    /// A weight dataset replaced by one of another shape (much larger, declared
    /// without data) or type (int8, float64, strings).
    mutating func redeclareDataset(_ path: String) throws {
        var datasets: [String] = []
        let file = H5Fopen(path, segkit_h5f_acc_rdwr(), segkit_h5p_default())
        guard file >= 0 else { return }
        defer { H5Fclose(file) }
        func walk(_ group: String) {
            let g = H5Gopen2(file, group, segkit_h5p_default())
            guard g >= 0 else { return }
            defer { H5Gclose(g) }
            var info = H5G_info_t()
            H5Gget_info(g, &info)
            for i in 0..<info.nlinks {
                var buffer = [CChar](repeating: 0, count: 512)
                H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buffer, 512, segkit_h5p_default())
                let name = String(cString: buffer), full = group == "/" ? "/" + name : group + "/" + name
                var oinfo = H5O_info_t()
                guard H5Oget_info_by_name2(file, full, &oinfo, UInt32(H5O_INFO_BASIC), segkit_h5p_default()) >= 0 else { continue }
                if oinfo.type == H5O_TYPE_GROUP { walk(full) } else { datasets.append(full) }
            }
        }
        walk("/")
        guard !datasets.isEmpty else { return }
        let target = datasets[int(datasets.count)]
        H5Ldelete(file, target, segkit_h5p_default())
        let shapes: [[hsize_t]] = [[1_000_000, 1_000_000], [3, 3, 1_000_000_000, 8], [0], [1 << 40], [2, 2, 2, 2, 2, 2, 2], []]
        var dims = shapes[int(shapes.count)]
        let space = dims.isEmpty ? H5Screate(H5S_SCALAR) : H5Screate_simple(Int32(dims.count), &dims, nil)
        defer { H5Sclose(space) }
        let types = [segkit_h5t_native_float(), segkit_h5t_native_int8(), segkit_h5t_native_double(), segkit_h5t_c_s1()]
        let plist = H5Pcreate(segkit_h5p_dataset_create())
        defer { H5Pclose(plist) }
        H5Pset_alloc_time(plist, H5D_ALLOC_TIME_LATE)
        let d = H5Dcreate2(file, target, types[int(types.count)], space, segkit_h5p_default(), plist, segkit_h5p_default())
        if d >= 0 { H5Dclose(d) }
    }

    /// A `.keras` rewritten with a corrupted entry, an entry path escaping the
    /// archive, a missing entry, or a duplicated one.
    mutating func zipTrick(_ path: String) throws {
        switch int(4) {
        case 0: try rewriteZip(path, corrupting: "model.weights.h5")
        case 1: try rewriteZip(path, extra: ("../../evil.txt", Data("x".utf8)))
        case 2: try rewriteZip(path, dropping: ["config.json", "model.weights.h5", "metadata.json"][int(3)])
        default: try rewriteZip(path, extra: ("/etc/passwd", Data("x".utf8)))
        }
    }

    mutating func rewriteZip(_ path: String, corrupting: String? = nil, dropping: String? = nil, extra: (String, Data)? = nil,
                             replacing: (String, Data)? = nil) throws {
        let source = try Archive(url: URL(fileURLWithPath: path), accessMode: .read)
        var entries: [(String, Data)] = []
        for entry in source {
            var data = Data()
            _ = try source.extract(entry) { data.append($0) }
            if entry.path == dropping { continue }
            if let replacing, entry.path == replacing.0 { data = replacing.1 }
            if entry.path == corrupting {
                if entry.path.hasSuffix(".json"), let text = String(data: data, encoding: .utf8) {
                    data = Data(corruptJSON(text).utf8)
                } else if !data.isEmpty {
                    for _ in 0..<(1 + int(16)) { let i = int(data.count); data[i] ^= UInt8(1 << int(8)) }
                }
            }
            entries.append((entry.path, data))
        }
        if let extra { entries.append(extra) }
        try FileManager.default.removeItem(atPath: path)
        let out = try Archive(url: URL(fileURLWithPath: path), accessMode: .create)
        for (name, data) in entries {
            try out.addEntry(with: name, type: .file, uncompressedSize: Int64(data.count), compressionMethod: .deflate) { p, n in
                data.subdata(in: Int(p)..<Int(p) + n)
            }
        }
    }
}
