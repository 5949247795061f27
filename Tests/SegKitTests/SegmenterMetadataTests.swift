import SegKitSupport
import Foundation
import Testing
import SegKitKeras
@testable import SegKit

@Suite struct SegmenterMetadataTests {
    func metadata(_ entries: [String: JSONValue]) -> JSONValue {
        var base: [String: JSONValue] = ["classes": .number(3), "total_stride": .number(8), "reference_size": .array([.number(24), .number(24)]),
                                         "input_scale": .string("unit")]
        for (k, v) in entries { base[k] = v }
        return .object(base)
    }

    /// Found by the segmenter corpus: `classes` = 10⁹ in a checkpoint's segkit.json
    /// made `predict` allocate 16 GB and trap.
    @Test(arguments: [
        ("classes", JSONValue.number(1e9), "segkit.json: classes is"),
        ("classes", JSONValue.number(5), "classes is 5, and the model's output has 3 channels"),
        ("total_stride", JSONValue.number(1e9), "segkit.json: total_stride is"),
        ("reference_size", JSONValue.array([.number(-3), .number(24)]), "segkit.json: reference_size is"),
        ("class_names", JSONValue.array([.string("a")]), "class_names is not a list of 3 names"),
        ("input_scale", JSONValue.string("mean-std:1,0"), "segkit.json: input_scale is"),
        ("background_class", JSONValue.number(7), "background_class is"),
    ])
    func aDamagedSegkitJSONValueIsAnErrorNamingTheKey(_ key: String, _ value: JSONValue, _ message: String) throws {
        #expect { try SegmenterMetadata(json: metadata([key: value]), outputChannels: 3, file: "seg.keras") } throws: {
            "\($0)".hasPrefix("seg.keras: ") && "\($0)".contains(message)
        }
    }

    @Test func nullValuesAreAbsentAndAFileWithoutMetadataTakesTheOutputsChannels() throws {
        let m = try SegmenterMetadata(json: metadata(["reference_size": .null]), outputChannels: 3, file: "seg.keras")
        #expect(m.classes == 3 && m.referenceSize == nil && m.totalStride == 8 && m.classNames == ["class_0", "class_1", "class_2"])
        #expect(try SegmenterMetadata(json: nil, outputChannels: 5, file: "k.h5").classes == 5)
    }

    @Test func everyStoredValueReadsBackAsItWasWritten() throws {
        var m = SegmenterMetadata(classes: 3, classNames: ["sky", "road", "car"])
        m.recipe = "fcn-8s"
        m.decoder = "fcn"
        m.totalStride = 32
        m.output = "logits"
        m.referenceSize = (224, 240)
        m.stages = [.init(stride: 8, layer: "block3_pool", offset: [3.5, 3.5], receptiveField: [44, 44])]
        m.inputScale = .symmetric
        m.background = 0
        let json = m.json
        #expect(json["total_stride"]?.int == 32 && json["reference_size"] == [224, 240] && json["background_class"]?.int == 0)
        #expect(try SegmenterMetadata(json: json, outputChannels: 3, file: "seg.keras") == m)
        var unaligned = SegmenterMetadata(classes: 2)
        unaligned.source = "classifier.h5"
        #expect(unaligned.json["reference_size"] == .null)
        #expect(try SegmenterMetadata(json: unaligned.json, outputChannels: 2, file: "fcn.keras") == unaligned)
    }
}
