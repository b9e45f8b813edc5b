import Foundation

/// What a replay ends with: every parameter's values and every stepped parameter's state.
public struct ReplayResult: Sendable, Equatable {
    /// The element type the replay ran in.
    public var dtype: DType
    /// Final values by parameter name, exactly converted to `Double`.
    public var parameters: [String: [Double]]
    /// Final state by parameter name, then slot name; only parameters that took a step have state.
    public var state: [String: [String: [Double]]]
    /// The shape of each of ``state``'s slots, by the same names (``ParameterState/shapes``).
    public var stateShapes: [String: [String: [Int]]] = [:]

    /// How many final values (parameters and state) are infinite or NaN; ``json`` writes them as `null`.
    public var nonFiniteCount: Int {
        let tensors = Array(parameters.values) + state.values.flatMap(\.values)
        return tensors.reduce(0) { count, values in count + values.count { !$0.isFinite } }
    }

    /// `{"params": {name: [numbers]}, "state": {name: {slot: [numbers]}}, "state_shapes": {name: {slot:
    /// [sizes]}}}`, keys sorted, numbers in the shortest form that reads back to the same `Double`; a non-finite
    /// number is written as `null`. `state_shapes` has an entry for every slot of `state`, ``stateShapes``
    /// row-major (`[]` for a scalar slot such as ASGD's `eta`).
    public var json: String {
        var text = ""
        let elements = parameters.values.reduce(0) { $0 + $1.count } + state.values.flatMap(\.values).reduce(0) { $0 + $1.count }
        text.reserveCapacity(64 + 24 * elements)
        text += "{\"params\": "
        Self.write(parameters, to: &text) { Self.write($0, to: &$1) }
        text += ", \"state\": "
        Self.write(state, to: &text) { slots, text in Self.write(slots, to: &text) { Self.write($0, to: &$1) } }
        text += ", \"state_shapes\": "
        Self.write(stateShapes, to: &text) { slots, text in
            Self.write(slots, to: &text) { shape, text in text += "[" + shape.map(String.init).joined(separator: ", ") + "]" }
        }
        text += "}"
        return text
    }

    /// Writes the result as a safetensors file, replacing any file at `url` only once the new one is complete:
    /// each parameter as `param/<name>` and each state slot as `state/<name>/<slot>` (the names of a
    /// checkpoint), flat, in the replay's dtype (`F32` or `F64`), every value as it is, infinities included.
    /// - Throws: ``ReplayError`` naming the file when it cannot be written.
    public func writeSafeTensors(to url: URL) throws(ReplayError) {
        var file = SafeTensors()
        func add(_ name: String, _ values: [Double]) {
            let bytes = switch dtype {
            case .float32: values.map(Float.init).withUnsafeBytes { Data($0) }
            case .float64: values.withUnsafeBytes { Data($0) }
            }
            file.tensors[name] = SafeTensors.Tensor(dtype: dtype, bytes: bytes)
        }
        for (name, values) in parameters { add("param/\(name)", values) }
        for (name, slots) in state {
            for (slot, values) in slots { add("state/\(name)/\(slot)", values) }
        }
        do {
            try AtomicFile.write(try file.encoded(), to: url)
        } catch let error as CheckpointError {
            throw ReplayError("cannot write the result to \(url.path): \(error)")
        } catch {
            throw ReplayError("cannot encode the result for \(url.path): \(error)")
        }
    }

    /// Appends `{"key": value, …}`, keys sorted.
    private static func write<Value>(_ entries: [String: Value], to text: inout String,
                                     _ value: (Value, inout String) -> Void) {
        text += "{"
        for (index, key) in entries.keys.sorted().enumerated() {
            if index > 0 { text += ", " }
            text += jsonString(key)
            text += ": "
            value(entries[key]!, &text)
        }
        text += "}"
    }

    /// Appends `[numbers]`, each written straight into `text` (no string per number).
    private static func write(_ values: [Double], to text: inout String) {
        text += "["
        for (index, value) in values.enumerated() {
            if index > 0 { text += ", " }
            if value.isFinite { value.write(to: &text) } else { text += "null" }
        }
        text += "]"
    }
}

/// A JSON string literal.
func jsonString(_ text: String) -> String {
    var escaped = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": escaped += "\\\""
        case "\\": escaped += "\\\\"
        case "\n": escaped += "\\n"
        case _ where scalar.value < 0x20: escaped += String(format: "\\u%04x", scalar.value)
        default: escaped.unicodeScalars.append(scalar)
        }
    }
    return escaped + "\""
}
