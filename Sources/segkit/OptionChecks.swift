import ArgumentParser
import SegKit

// Options with a fixed set of values: an unknown value is refused by the
// argument parser, which lists the allowed ones (exit status 64).
extension TrainingConfig.OptimizerKind: ExpressibleByArgument {}
extension TrainingConfig.Schedule: ExpressibleByArgument {}
extension SegmentationLoss: ExpressibleByArgument {}

/// `--head keep|new`.
enum HeadChoice: String, CaseIterable, ExpressibleByArgument {
    case keep, new
}

/// Refuses `value` outside `range`, naming the option (run from `validate()`,
/// before any file is opened).
///
/// - Throws: `ValidationError`.
func require<T: Comparable>(_ value: T, in range: ClosedRange<T>, _ option: String) throws {
    guard range.contains(value) else { throw ValidationError("\(option) must be from \(range.lowerBound) to \(range.upperBound), not \(value)") }
}

/// Refuses a non-finite `value` or one outside `range`.
///
/// - Throws: `ValidationError`.
func require(_ value: Float, in range: ClosedRange<Float>, _ option: String) throws {
    guard value.isFinite, range.contains(value) else { throw ValidationError("\(option) must be a number from \(range.lowerBound) to \(range.upperBound), not \(value)") }
}

/// Runs a spec parser in `validate()`: its `SpecError` becomes the argument
/// parser's usage error, quoting the bad part.
///
/// - Throws: `ValidationError`.
func checkSpec(_ body: () throws -> Void) throws {
    do { try body() } catch let e as SpecError { throw ValidationError(e.description) }
}
