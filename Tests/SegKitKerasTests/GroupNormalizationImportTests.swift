import Foundation
import Testing
import SegKitEngine
@testable import SegKitKeras
import TestFixtures

/// GroupNormalization's options as Keras writes them (group_norm_net's gn2 has
/// groups 8 on 8 channels, epsilon 1e-2, scale off); its values against Keras's
/// are checked with every fixture in KerasImportTests.
@Suite struct GroupNormalizationImportTests {
    let weights = Fixtures.path("group_norm_net.k3.weights.h5")

    @Test func groupsMinusOneIsOneGroupPerChannel() throws {
        let config = try editedConfig("group_norm_net.k3.json", "\"groups\": 8, \"axis\": -1", "\"groups\": -1, \"axis\": -1")
        defer { try? FileManager.default.removeItem(atPath: config) }
        let model = try KerasModel.load(weights, configPath: config)
        let gn = try #require(model.graph.layers.first { $0.name == "gn2" } as? GroupNormalization)
        #expect(gn.groups == 8)
    }

    @Test func anotherAxisOrGroupsThatDoNotDivideTheChannelsAreRefusedByName() throws {
        let axis = try editedConfig("group_norm_net.k3.json", "\"groups\": 4, \"axis\": -1", "\"groups\": 4, \"axis\": 1")
        let groups = try editedConfig("group_norm_net.k3.json", "\"groups\": 4, \"axis\": -1", "\"groups\": 3, \"axis\": -1")
        defer { for p in [axis, groups] { try? FileManager.default.removeItem(atPath: p) } }
        #expect { try KerasModel.load(weights, configPath: axis) } throws: {
            if case let .unsupportedOption(layer, className, option, _, _) = $0 as? KerasImportError {
                return layer == "gn1" && className == "GroupNormalization" && option == "axis"
            }
            return false
        }
        #expect { try KerasModel.load(weights, configPath: groups) } throws: {
            if case let .unsupportedOption(layer, _, option, value, _) = $0 as? KerasImportError {
                return layer == "gn1" && option == "groups" && value.contains("8 channels")
            }
            return false
        }
    }

    @Test func writtenAndReadBackItKeepsItsOptionsAndValues() throws {
        let model = try KerasModel.load(Fixtures.path("group_norm_net.k3.keras"))
        let path = scratchPath("group_norm_net.keras")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try KerasWriter(graph: model.graph, name: model.name).write(to: path)
        let back = try KerasModel.load(path)
        for name in ["gn1", "gn2"] {
            let a = try #require(model.graph.layers.first { $0.name == name } as? GroupNormalization)
            let b = try #require(back.graph.layers.first { $0.name == name } as? GroupNormalization)
            #expect(a.groups == b.groups && a.epsilon == b.epsilon && (a.gamma == nil) == (b.gamma == nil) && (a.beta == nil) == (b.beta == nil))
        }
        let x = try Fixtures.expected(Fixtures.cases.first { $0.model == "group_norm_net.k3.keras" }!).input
        #expect(try back.graph.forward([x]).outputs(of: back.graph)[0] == model.graph.forward([x]).outputs(of: model.graph)[0])
    }
}
