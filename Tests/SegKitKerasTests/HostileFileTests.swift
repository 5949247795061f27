import CHDF5
import Foundation
import HDF5
import Testing
import ZIPFoundation
import TestFixtures
@testable import SegKitKeras

/// What a user sees for an error.
func message(_ error: Error) -> String { (error as? LocalizedError)?.errorDescription ?? "\(error)" }

/// Each rule of "never execute, never reach outside the file, bounded work" with a forged file.
@Suite struct HostileFileTests {
    /// A copy of a legacy Keras file with one weight dataset replaced by `make(group, name)`.
    func forgedWeights(_ make: (hid_t, String) -> Void) throws -> String {
        let path = scratchPath("forged.h5")
        try FileManager.default.copyItem(atPath: Fixtures.path("plain_cnn.k3.h5"), toPath: path)
        let file = H5Fopen(path, segkit_h5f_acc_rdwr(), segkit_h5p_default())
        defer { H5Fclose(file) }
        let group = H5Gopen2(file, "/model_weights/conv1/conv1", segkit_h5p_default())
        defer { H5Gclose(group) }
        H5Ldelete(group, "kernel", segkit_h5p_default())
        make(group, "kernel")
        return path
    }

    @Test func externalRawDataIsRefusedByObjectPath() throws {
        let path = try forgedWeights { group, name in
            let plist = H5Pcreate(segkit_h5p_dataset_create())
            H5Pset_external(plist, "/etc/hostname", 0, 288)
            var dims: [hsize_t] = [3, 3, 1, 8]
            let space = H5Screate_simple(4, &dims, nil)
            H5Dclose(H5Dcreate2(group, name, segkit_h5t_native_float(), space, segkit_h5p_default(), plist, segkit_h5p_default()))
            H5Sclose(space); H5Pclose(plist)
        }
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect { try KerasModel.load(path) } throws: {
            ($0 as? HDF5Error)?.message.contains("external files") == true && ($0 as? HDF5Error)?.object == "/model_weights/conv1/conv1/kernel"
        }
    }

    @Test func aVirtualDatasetDrawingFromAnotherFileIsRefused() throws {
        let path = try forgedWeights { group, name in
            var dims: [hsize_t] = [3, 3, 1, 8]
            let space = H5Screate_simple(4, &dims, nil)
            let plist = H5Pcreate(segkit_h5p_dataset_create())
            H5Pset_virtual(plist, space, "/etc/other.h5", "/stolen", space)
            H5Dclose(H5Dcreate2(group, name, segkit_h5t_native_float(), space, segkit_h5p_default(), plist, segkit_h5p_default()))
            H5Sclose(space); H5Pclose(plist)
        }
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect { try KerasModel.load(path) } throws: { message($0).contains("virtual dataset") }
    }

    @Test func aDeclaredTrillionElementWeightIsAnErrorNotAnAllocation() throws {
        let path = try forgedWeights { group, name in
            var dims: [hsize_t] = [1_000_000, 1_000_000]
            let space = H5Screate_simple(2, &dims, nil)
            let plist = H5Pcreate(segkit_h5p_dataset_create())
            H5Pset_alloc_time(plist, H5D_ALLOC_TIME_LATE)
            H5Dclose(H5Dcreate2(group, name, segkit_h5t_native_float(), space, segkit_h5p_default(), plist, segkit_h5p_default()))
            H5Sclose(space); H5Pclose(plist)
        }
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect { try KerasModel.load(path) } throws: {
            if case let .shapeMismatch(layer, weight, _, found, _) = $0 as? KerasImportError { return layer == "conv1" && weight == "kernel" && found == [1_000_000, 1_000_000] }
            return false
        }
    }

    @Test func aConfigDeclaringAHugeLayerIsRefusedBeforeAllocating() throws {
        let config = try editedConfig("plain_cnn.k3.json", "\"filters\": 16,", "\"filters\": 1000000,")
        defer { try? FileManager.default.removeItem(atPath: config) }
        #expect { try KerasModel.load(Fixtures.path("plain_cnn.k3.weights.h5"), configPath: config) } throws: {
            // conv2 and conv3 both grow: the per-weight or the per-model bound refuses it.
            message($0).contains("declares a weight of shape") && message($0).contains("268435456")
        }
    }

    @Test func absurdlyNestedOrOversizedJSONIsRefused() throws {
        let deep = scratchPath("deep.json")
        try (String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)).write(toFile: deep, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: deep) }
        #expect { try KerasModel.load(Fixtures.path("plain_cnn.k3.weights.h5"), configPath: deep) } throws: { message($0).contains("nests deeper than") }
    }

    /// A `.keras` rewritten with `entries`.
    func archive(_ entries: [(String, Data)]) throws -> String {
        let path = scratchPath("forged.keras")
        let out = try Archive(url: URL(fileURLWithPath: path), accessMode: .create)
        for (name, data) in entries {
            try out.addEntry(with: name, type: .file, uncompressedSize: Int64(data.count), compressionMethod: .deflate) { p, n in
                data.subdata(in: Int(p)..<Int(p) + n)
            }
        }
        return path
    }

    func originalEntries() throws -> [(String, Data)] {
        let source = try Archive(url: URL(fileURLWithPath: Fixtures.path("plain_cnn.k3.keras")), accessMode: .read)
        return try source.map { entry in
            var data = Data()
            _ = try source.extract(entry) { data.append($0) }
            return (entry.path, data)
        }
    }

    @Test(arguments: ["../../outside.txt", "/etc/cron.d/evil"])
    func archiveEntriesEscapingTheArchiveAreAnError(_ name: String) throws {
        let path = try archive(try originalEntries() + [(name, Data("x".utf8))])
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect { try KerasModel.load(path) } throws: { message($0).contains("absolute or '..' path") }
        #expect(!FileManager.default.fileExists(atPath: "/etc/cron.d/evil"))
    }

    @Test func aZipBombIsAnErrorNotAnOutOfMemoryKill() throws {
        // 80 MB of spaces compress to ~80 KB; the config limit is 64 MB.
        var entries = try originalEntries().filter { $0.0 != "config.json" }
        entries.append(("config.json", Data(repeating: 0x20, count: 80 << 20)))
        let path = try archive(entries)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect((try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int ?? 0) < 1 << 20)
        #expect { try KerasModel.load(path) } throws: { message($0).contains("decompresses to more than") }
    }

    @Test func onlyTheKnownEntriesAreRead() throws {
        // An archive with extra entries loads (they are ignored, never extracted).
        let path = try archive(try originalEntries() + [("assets/run_me.py", Data("import os".utf8))])
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try KerasModel.load(path).totalParameters == 4059)
    }
}
