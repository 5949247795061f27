import Foundation
import Testing
import SegKit

/// The real-datasets issue as a user meets it: JPEG photo layouts, mixed and
/// off-grid sizes, and messages that name the file and the option that fixes it.
@Suite struct DatasetCLITests {
    static let data = CLI.root.appendingPathComponent("Tests/Fixtures/data").path
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("segkit-datasets-\(UUID().uuidString)").path

    init() throws { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }

    /// A small from-scratch U-Net (stride 4) for K classes of RGB images.
    func unet(_ classes: Int) throws -> String {
        let out = "\(folder)/unet\(classes).keras"
        let r = try CLI.run(["build", "--recipe", "unet-scratch", "--classes", String(classes), "--input-channels", "3",
                             "--set", "depth=2", "--set", "base_filters=8", "--out", out])
        #expect(r.status == 0, "\(r.stderr)")
        return out
    }

    @Test func vocTrainsEvaluatesWithItsClassNamesAndPredictsItsJPEGs() throws {
        let seg = try unet(21)
        let trained = "\(folder)/voc.keras"
        let t = try CLI.run(["train", seg, "--data", "voc:\(Self.data)/voc", "--val-data", "voc:\(Self.data)/voc:val",
                             "--epochs", "1", "--batch", "2", "--out", trained])
        #expect(t.status == 0, "\(t.stderr)")
        #expect(t.stdout.contains("6 sample(s)") && t.stdout.contains("label 255 ignored") && t.stdout.contains("size buckets"), "\(t.stdout)")
        let e = try CLI.run(["eval", trained, "--data", "voc:\(Self.data)/voc:val"])
        #expect(e.status == 0, "\(e.stderr)")
        #expect(e.stdout.contains("aeroplane") && e.stdout.contains("person") && e.stdout.contains("label 255 ignored"), "\(e.stdout)")
        let p = try CLI.run(["predict", trained, "\(Self.data)/voc/VOC2012/JPEGImages", "--out", "\(folder)/masks"])
        #expect(p.status == 0, "\(p.stderr)")
        let mask = try PNGImage(path: "\(folder)/masks/2007_000039_mask.png")
        #expect((mask.width, mask.height) == (40, 56))
    }

    @Test func petsTrainOnCropsOfRescaledImagesWithGreyPhotosReplicated() throws {
        let seg = try unet(2)
        let t = try CLI.run(["train", seg, "--data", "pets:\(Self.data)/pets", "--val-data", "pets:\(Self.data)/pets:test",
                             "--crop", "32,32", "--augment", "flip,scale:0.5-2.0", "--epochs", "1", "--batch", "4", "--out", "\(folder)/pets.keras"])
        #expect(t.status == 0, "\(t.stderr)")
        #expect(t.stdout.contains("1 grey image(s) repeated into 3 channels") && t.stdout.contains("random crops of 32 rows x 32 columns"), "\(t.stdout)")
        #expect(t.stdout.contains("Training 1 epoch(s) of 1 step(s)"), "\(t.stdout)")
    }

    @Test func aMixedSizeFolderAndAnOffGridFolderTrainWithoutCropping() throws {
        let seg = try unet(3)
        for (name, sizes) in [("mixed", "4 image sizes"), ("odd", "whole 45x75 images")] {
            let t = try CLI.run(["train", seg, "--data", "\(Self.data)/\(name)", "--epochs", "1", "--batch", "2", "--out", "\(folder)/\(name).keras"])
            #expect(t.status == 0, "\(t.stderr)")
            #expect(t.stdout.contains(sizes), "\(t.stdout)")
        }
    }

    @Test func anOutOfRangeClassIdNamesTheMaskThePixelAndIgnoreLabel() throws {
        let seg = try unet(3)
        for command in [["train", seg, "--out", "\(folder)/x.keras"], ["eval", seg]] {
            let r = try CLI.run(command + ["--data", "voc:\(Self.data)/voc", "--ignore-label", "0"])
            #expect(r.status == 1)
            #expect(r.stderr.hasPrefix("Error: SegmentationClass/2007_000032.png: class id "), "\(r.stderr)")
            #expect(r.stderr.contains("not a class of this segmenter (0 to 2) nor the ignore label 0"), "\(r.stderr)")
        }
        let plain = try CLI.run(["eval", seg, "--data", "\(Self.data)/colour_masks", "--mask-colors", "\(Self.data)/colour_masks/colors.txt"])
        #expect(plain.status == 0, "\(plain.stderr)")
    }

    @Test func skipBadSkipsPairsWithOutOfRangeIdsAndSaysHowMany() throws {
        let seg = try unet(3)
        let dir = "\(folder)/onebad"
        try FileManager.default.copyItem(atPath: "\(Self.data)/odd", toPath: dir)
        try PNGImage.write("\(dir)/masks/img_02.png", width: 45, height: 75, channels: 1, pixels: [UInt8](repeating: 7, count: 45 * 75))
        let stop = try CLI.run(["train", seg, "--data", dir, "--epochs", "1", "--out", "\(folder)/b.keras"])
        #expect(stop.status == 1 && stop.stderr.contains("masks/img_02.png: class id 7 at (row 0, column 0)") && stop.stderr.contains("--ignore-label 7"))
        let skip = try CLI.run(["train", seg, "--data", dir, "--skip-bad", "--epochs", "1", "--out", "\(folder)/b.keras"])
        #expect(skip.status == 0, "\(skip.stderr)")
        #expect(skip.stderr.contains("skipped 1 bad sample(s)") && skip.stdout.contains("4 sample(s)") == false && skip.stdout.contains("on 3 sample(s)"),
                "\(skip.stdout)\(skip.stderr)")
    }

    @Test func aColourDatasetOnAGreySegmenterNamesTheImageAndInputChannels() throws {
        let seg = "\(folder)/grey.keras"
        #expect(try CLI.run(["build", "--recipe", "unet-scratch", "--classes", "3", "--input-channels", "1", "--set", "depth=2",
                             "--set", "base_filters=8", "--out", seg]).status == 0)
        let r = try CLI.run(["eval", seg, "--data", "\(Self.data)/jpeg_folder"])
        #expect(r.status == 1 && r.stderr.contains("images/img_00.jpg: is a colour image") && r.stderr.contains("--input-channels 3"), "\(r.stderr)")
    }

    @Test func badCropAndAugmentSpecsQuoteTheBadPart() throws {
        let seg = try unet(3)
        let crop = try CLI.run(["train", seg, "--data", "\(Self.data)/odd", "--crop", "32x32", "--out", "\(folder)/c.keras"])
        #expect(crop.status != 0 && crop.stderr.contains("--crop '32x32'"), "\(crop.stderr)")
        let scale = try CLI.run(["train", seg, "--data", "\(Self.data)/odd", "--augment", "scale:2-1", "--out", "\(folder)/c.keras"])
        #expect(scale.status != 0 && scale.stderr.contains("'scale:2-1'"), "\(scale.stderr)")
    }

    @Test func cropsWithoutOtherAugmentationComeFromTheFeatureCache() throws {
        let seg = "\(folder)/skips.keras"
        let b = try CLI.run(["build", "--recipe", "transposed-skips", "--classifier", CLI.fixture("plain_cnn.k3.keras"), "--input-channels", "3",
                             "--classes", "3", "--out", seg])
        #expect(b.status == 0, "\(b.stderr)")
        let t = try CLI.run(["train", seg, "--data", "\(Self.data)/odd", "--crop", "40,40", "--epochs", "1", "--batch", "2", "--out", "\(folder)/crop.keras"])
        #expect(t.status == 0, "\(t.stderr)")
        #expect(t.stdout.contains("frozen-encoder features cached (in memory), crops taken as windows of the whole images' maps"), "\(t.stdout)")
        let flip = try CLI.run(["train", seg, "--data", "\(Self.data)/odd", "--crop", "40,40", "--augment", "flip", "--epochs", "1", "--out", "\(folder)/crop.keras"])
        #expect(flip.status == 0 && flip.stdout.contains("no frozen-encoder feature cache (every step sees new pixels)"), "\(flip.stdout)")
        let big = try CLI.run(["train", seg, "--data", "\(Self.data)/odd", "--crop", "80,40", "--epochs", "1", "--out", "\(folder)/crop.keras"])
        #expect(big.status == 0 && big.stdout.contains("not cached: ") && big.stdout.contains("smaller than the 40x80 crop"), "\(big.stdout)")
    }
}

extension DatasetCLITests {
    /// Found by a user's trial: one CMYK file stopped a whole folder, and a
    /// truncated JPEG in a lazily read folder stopped `--skip-bad` mid-run.
    @Test func skipBadSkipsUnreadableImagesInPredictAndInLazilyReadFolders() throws {
        let seg = try unet(3)
        let stop = try CLI.run(["predict", seg, "\(Self.data)/jpeg", "--out", "\(folder)/p"])
        #expect(stop.status == 1 && stop.stderr.contains("cmyk.jpg"), "\(stop.stderr)")
        let skip = try CLI.run(["predict", seg, "\(Self.data)/jpeg", "--out", "\(folder)/p", "--skip-bad"])
        #expect(skip.status == 0 && skip.stderr.contains("skipped 3 image(s)"), "\(skip.stderr)")
        let dir = "\(folder)/lazy"
        try FileManager.default.copyItem(atPath: "\(Self.data)/jpeg_folder", toPath: dir)
        let jpeg = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/images/img_01.jpg"))
        try jpeg.prefix(jpeg.count / 2).write(to: URL(fileURLWithPath: "\(dir)/images/img_01.jpg"))
        let lazy = try CLI.run(["eval", seg, "--data", dir, "--data-memory-mb", "0", "--skip-bad"])
        #expect(lazy.status == 0 && lazy.stderr.contains("skipped 1 bad sample(s)") && lazy.stdout.contains("3 image(s)"), "\(lazy.stdout)\(lazy.stderr)")
    }

    @Test func classWeightsWithPlainCrossEntropySwitchToTheWeightedLossAndSaySo() throws {
        let seg = try unet(3)
        let t = try CLI.run(["train", seg, "--data", "\(Self.data)/odd", "--class-weights", "auto", "--epochs", "1", "--out", "\(folder)/w.keras"])
        #expect(t.status == 0 && t.stdout.contains("training with weighted cross-entropy"), "\(t.stdout)\(t.stderr)")
        let negative = try CLI.run(["train", seg, "--data", "\(Self.data)/odd", "--crop", "-5,10", "--out", "\(folder)/w.keras"])
        #expect(negative.status == 64 && negative.stderr.contains("'-5' is not a crop height"), "\(negative.stderr)")
        let h5 = try CLI.run(["train", seg, "--data", "\(Self.data)/odd", "--out", "\(folder)/w.h5"])
        #expect(h5.status == 64 && h5.stderr.contains("a trained segmenter is a .keras file"), "\(h5.stderr)")
    }
}

/// The no-crash issue's command lines: every option with fixed values is an
/// enum, every number range-checked, every spec error quotes the bad part.
@Suite struct OptionValidationTests {
    @Test(arguments: [
        (["data", "fashion-canvas:count=4,seed=-1", "--out", "/tmp/x.h5"], "'-1' is not a seed"),
        (["data", "fashion-canvas:count=4,items=-", "--out", "/tmp/x.h5"], "'-' is not a range A-B"),
        (["train", "x.keras", "--data", "d", "--optimizer", "sgdd", "--out", "/tmp/o.keras"], "Please provide one of 'sgd' and 'adam'"),
        (["train", "x.keras", "--data", "d", "--epochs", "0", "--out", "/tmp/o.keras"], "--epochs must be from 1"),
        (["train", "x.keras", "--data", "d", "--lr", "nan", "--out", "/tmp/o.keras"], "--lr must be a number"),
        (["train", "x.keras", "--data", "d", "--crop", "3,x", "--out", "/tmp/o.keras"], "--crop '3,x': 'x' is not a crop width"),
        (["train", "x.keras", "--data", "d", "--augment", "flip,,shift", "--out", "/tmp/o.keras"], "--augment 'flip,,shift': has an empty item"),
        (["train", "x.keras", "--data", "d", "--class-weights", "1,a", "--out", "/tmp/o.keras"], "'a' is not a class weight"),
        (["train", "x.keras", "--data", "d", "--schedule", "linear", "--out", "/tmp/o.keras"], "'constant', 'step' or 'cosine'"),
        (["eval", "x.keras", "--data", "d", "--input-scale", "mean-std:1", "--out", "/tmp/o.keras"], "--input-scale 'mean-std:1'"),
        (["build", "--recipe", "unet-scratch", "--set", "=4", "--out", "/tmp/q.keras"], "--set '=4': is not KEY=VALUE"),
        (["build", "--recipe", "transposed", "--head", "maybe", "--out", "/tmp/q.keras"], "'keep' and 'new'"),
        (["predict", "x.keras", "img", "--tile", "3", "--out", "/tmp/m"], "--tile must be from 16"),
        (["train", "x.keras", "--data", "d", "--batch", "0", "--out", "/tmp/o.keras"], "--batch must be from 1"),
        (["compare", "--classifier", "c", "--data", "d", "--test-data", "t", "--labels", "2,a", "--out", "/tmp/r"], "--labels '2,a': 'a'"),
        (["compare", "--classifier", "c", "--data", "d", "--test-data", "t", "--labels", "50,8,50", "--out", "/tmp/r"], "--labels '50,8,50': '50' is given twice"),
    ])
    func aBadOptionValueIsRefusedBeforeAnyFileIsOpenedQuotingIt(_ args: [String], _ message: String) throws {
        let r = try CLI.run(args)
        #expect(r.status == 64, "\(r.stderr)")
        #expect(r.stderr.hasPrefix("Error: ") && r.stderr.contains(message), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").filter { $0.hasPrefix("Error: ") }.count == 1)
    }
}
