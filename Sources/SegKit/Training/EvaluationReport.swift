import SegKitSupport

/// The figures `segkit eval --json` prints (and `compare` stores).
public struct EvaluationReport {
    /// The confusion matrix the figures come from.
    public let matrix: ConfusionMatrix
    /// The background class, left out of `mean_iou_no_background`.
    public let background: Int
    /// Class names by id.
    public let classNames: [String]

    /// The report of `matrix`, naming its classes.
    public init(matrix: ConfusionMatrix, background: Int, classNames: [String]) {
        self.matrix = matrix
        self.background = background
        self.classNames = classNames
    }

    /// The object `eval --json` prints: pixel and mean accuracy, mean IoU with and without the
    /// background and frequency-weighted IoU (fractions 0…1, Long et al., FCN, §5), per-class IoU
    /// and Dice (null for a class in neither truth nor prediction), class names, the background
    /// class and the K x K confusion matrix (rows: truth, columns: prediction; pixel counts).
    public var json: JSONValue {
        func list(_ v: [Double?]) -> JSONValue { .array(v.map { $0.map { .number($0) } ?? .null }) }
        return ["pixel_accuracy": .number(matrix.pixelAccuracy), "mean_accuracy": .number(matrix.meanAccuracy),
                "mean_iou": .number(matrix.meanIoU), "mean_iou_no_background": .number(matrix.meanIoU(excluding: background)),
                "frequency_weighted_iou": .number(matrix.frequencyWeightedIoU), "per_class_iou": list(matrix.perClassIoU),
                "per_class_dice": list(matrix.perClassDice), "class_names": .array(classNames.map { .string($0) }),
                "background_class": .number(Double(background)),
                "confusion_matrix": .array(matrix.counts.map { .array($0.map { .number(Double($0)) }) })]
    }
}
