/// The group names of Keras 3's weights layout (`layers/<key>/vars/<i>` in a
/// `.weights.h5` or a `.keras` archive's `model.weights.h5`), one rule for the
/// reader and the writer: Keras's saving_lib names each layer's group by its
/// class in snake case, and the second, third … layer of a class in the
/// model's order `<name>_1`, `<name>_2` … (keras/src/saving/saving_lib.py,
/// `_save_container_state` / `_load_container_state`: `naming.to_snake_case`
/// of the class name, a `used_names` count per name).
struct Keras3WeightKeys {
    private var used: [String: Int] = [:]

    /// The key of the next layer, of Keras class `className` ("Conv2D" →
    /// "conv2d", then "conv2d_1", …).
    mutating func next(className: String) -> String {
        let base = snakeCase(className)
        guard let n = used[base] else {
            used[base] = 0
            return base
        }
        used[base] = n + 1
        return "\(base)_\(n + 1)"
    }
}

/// Keras's `naming.to_snake_case`: "Conv2DTranspose" → "conv2d_transpose",
/// "LeakyReLU" → "leaky_re_lu". Its two regular-expression substitutions,
/// `(.)([A-Z][a-z]+)` → `\1_\2` then `([a-z])([A-Z])` → `\1_\2`, are done
/// by hand with the same left-to-right, non-overlapping matching.
func snakeCase(_ name: String) -> String {
    func isUpper(_ c: Character) -> Bool { c.isASCII && c.isUppercase }
    func isLower(_ c: Character) -> Bool { c.isASCII && c.isLowercase }
    let s = Array(name.filter { $0.isLetter || $0.isNumber || $0 == "_" })
    var first: [Character] = []
    var i = 0
    while i < s.count {
        if i + 2 < s.count, isUpper(s[i + 1]), isLower(s[i + 2]) {
            first += [s[i], "_", s[i + 1]]
            i += 2
            while i < s.count, isLower(s[i]) { first.append(s[i]); i += 1 }
        } else {
            first.append(s[i])
            i += 1
        }
    }
    var second: [Character] = []
    i = 0
    while i < first.count {
        if i + 1 < first.count, isLower(first[i]), isUpper(first[i + 1]) {
            second += [first[i], "_", first[i + 1]]
            i += 2
        } else {
            second.append(first[i])
            i += 1
        }
    }
    return String(second).lowercased()
}
