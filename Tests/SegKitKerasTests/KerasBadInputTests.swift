import Foundation
import HDF5
import Testing
@testable import SegKitKeras
import TestFixtures

func scratchPath(_ name: String) -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("segkit-\(UUID().uuidString)-\(name)").path
}

/// A copy of a fixture config with one text substitution.
func editedConfig(_ fixture: String, _ from: String, _ to: String) throws -> String {
    let text = try String(contentsOfFile: Fixtures.path(fixture), encoding: .utf8)
    let found = text.contains(from)
    #expect(found, "fixture \(fixture) no longer contains \(from)")
    let path = scratchPath(fixture)
    try text.replacingOccurrences(of: from, with: to).write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

@Suite struct KerasBadInputTests {
    @Test func aTruncatedFileIsAnErrorNamingIt() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("plain_cnn.k2.h5")))
        let path = scratchPath("truncated.h5")
        try data.prefix(data.count / 3).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect { try KerasModel.load(path) } throws: { ($0 as? LocalizedError)?.errorDescription?.contains(path) == true }
    }

    @Test func aNonHDF5FileIsAnError() throws {
        let path = scratchPath("notes.h5")
        try "just text".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect { try KerasModel.load(path) } throws: { ($0 as? HDF5Error)?.message.contains("not an HDF5 file") == true }
    }

    @Test(arguments: ["with_lambda.k2.h5", "with_lambda.k3.keras"])
    func aLambdaLayerIsRefusedByNameAndClass(_ file: String) throws {
        #expect {
            try KerasModel.load(Fixtures.path(file))
        } throws: { error in
            guard case let .unsupportedLayer(name, className, f, _) = error as? KerasImportError else { return false }
            return name == "double_it" && className == "Lambda" && f.hasSuffix(file)
        }
    }

    @Test func weightsWhoseShapesDoNotMatchTheConfigAreAnError() throws {
        let config = try editedConfig("plain_cnn.k3.json", "\"filters\": 8,", "\"filters\": 9,")
        defer { try? FileManager.default.removeItem(atPath: config) }
        #expect {
            try KerasModel.load(Fixtures.path("plain_cnn.k3.weights.h5"), configPath: config)
        } throws: { error in
            guard case let .shapeMismatch(layer, weight, expected, found, _) = error as? KerasImportError else { return false }
            return layer == "conv1" && weight == "kernel" && expected == [3, 3, 1, 9] && found == [3, 3, 1, 8]
        }
    }

    @Test(arguments: ["plain_cnn.k3.weights.h5", "plain_cnn.k2.w.h5"])
    func aWeightsOnlyFileWithoutAConfigIsAnError(_ file: String) throws {
        #expect {
            try KerasModel.load(Fixtures.path(file))
        } throws: { error in
            if case .configRequired = error as? KerasImportError { return true }
            return false
        }
    }

    @Test func customClassesAndUnhonouredOptionsAreRefused() throws {
        let custom = try editedConfig("plain_cnn.k3.json", "\"class_name\": \"ReLU\"", "\"class_name\": \"MyReLU\"")
        let registered = try editedConfig("plain_cnn.k3.json", "\"registered_name\": null, \"build_config\": {\"input_shape\": [null, 6, 6, 16]}",
                                          "\"registered_name\": \"my_pkg>ReLU\", \"build_config\": {\"input_shape\": [null, 6, 6, 16]}")
        let channelsFirst = try editedConfig("plain_cnn.k3.json", "\"data_format\": \"channels_last\"", "\"data_format\": \"channels_first\"")
        let selu = try editedConfig("plain_cnn.k3.json", "\"activation\": \"silu\"", "\"activation\": \"selu\"")
        defer { for p in [custom, registered, channelsFirst, selu] { try? FileManager.default.removeItem(atPath: p) } }
        let weights = Fixtures.path("plain_cnn.k3.weights.h5")
        #expect { try KerasModel.load(weights, configPath: custom) } throws: {
            if case let .unsupportedLayer(name, className, _, _) = $0 as? KerasImportError { return name == "relu2" && className == "MyReLU" }
            return false
        }
        #expect { try KerasModel.load(weights, configPath: registered) } throws: {
            ($0 as? KerasImportError)?.errorDescription?.contains("my_pkg>ReLU") == true
        }
        #expect { try KerasModel.load(weights, configPath: channelsFirst) } throws: {
            if case let .unsupportedOption(_, _, option, value, _) = $0 as? KerasImportError { return option == "data_format" && value == "'channels_first'" }
            return false
        }
        #expect { try KerasModel.load(weights, configPath: selu) } throws: {
            ($0 as? KerasImportError)?.errorDescription?.contains("activation = 'selu'") == true
        }
    }
}
