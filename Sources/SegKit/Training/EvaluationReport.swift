import SegKitSupport

/// The figures `segkit eval --json` prints (and `compare` stores).
public struct EvaluationReport {
    public let matrix: ConfusionMatrix
    public let background: Int
    public let classNames: [String]

    public init(matrix: ConfusionMatrix, background: Int, classNames: [String]) {
        self.matrix = matrix
        self.background = background
        self.classNames = classNames
    }

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
