import CHDF5
import Foundation
import Testing

@Suite struct HDF5LinkTests {
    @Test func libhdf5LinksAndIsAtLeastVersion1_10() {
        var major: UInt32 = 0, minor: UInt32 = 0, release: UInt32 = 0
        #expect(H5get_libversion(&major, &minor, &release) >= 0)
        #expect(major > 1 || (major == 1 && minor >= 10), "libhdf5 \(major).\(minor).\(release)")
    }

    @Test func aNonHDF5FileIsRecognisedWithoutErrorOutput() throws {
        segkit_h5_silence_errors()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("segkit-not-hdf5-\(UUID()).h5").path
        try Data("not an HDF5 file".utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(H5Fis_hdf5(path) <= 0)
    }
}
