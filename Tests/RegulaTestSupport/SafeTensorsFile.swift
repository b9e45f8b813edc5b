import Foundation

/// Writes safetensors files for tests, independently of the host's reader: an 8-byte little-endian header
/// length, a JSON header of `{name: {"dtype", "shape", "data_offsets"}}`, then the raw little-endian data.
public struct SafeTensorsFile {
    /// One tensor: dtype name as safetensors spells it (`F32`, `F64`, `BF16`, …), shape and raw bytes.
    public struct Tensor {
        /// The dtype as the header spells it.
        public var dtype: String
        /// The shape; its product is the element count.
        public var shape: [Int]
        /// The raw data, little-endian.
        public var bytes: Data

        /// A tensor of any dtype name, shape and bytes, consistent or not.
        public init(dtype: String, shape: [Int], bytes: Data) {
            self.dtype = dtype
            self.shape = shape
            self.bytes = bytes
        }

        /// A float32 tensor (`F32`) of `values`, of the given shape (flat when nil).
        public static func float32(_ values: [Float], shape: [Int]? = nil) -> Tensor {
            Tensor(dtype: "F32", shape: shape ?? [values.count], bytes: values.withUnsafeBytes { Data($0) })
        }

        /// The values of an `F32` or `F64` tensor, exactly as `Double`.
        public var doubles: [Double] {
            dtype == "F32" ? bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)).map(Double.init) }
                           : bytes.withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
        }

        /// A float64 tensor (`F64`) of `values`, of the given shape (flat when nil).
        public static func float64(_ values: [Double], shape: [Int]? = nil) -> Tensor {
            Tensor(dtype: "F64", shape: shape ?? [values.count], bytes: values.withUnsafeBytes { Data($0) })
        }
    }

    /// The tensors, by name.
    public var tensors: [String: Tensor]

    /// A file holding `tensors`.
    public init(_ tensors: [String: Tensor]) { self.tensors = tensors }

    /// Reads a file written by anyone, trusting it (a test's reference reader, not a validating one).
    public init(reading file: Data) throws {
        let file = Data(file)
        let length = file.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let header = try JSONSerialization.jsonObject(with: file[8..<8 + length]) as? [String: Any] ?? [:]
        tensors = [:]
        for (name, entry) in header where name != "__metadata__" {
            let fields = entry as? [String: Any] ?? [:]
            let offsets = fields["data_offsets"] as? [Int] ?? [0, 0]
            tensors[name] = Tensor(dtype: fields["dtype"] as? String ?? "", shape: fields["shape"] as? [Int] ?? [],
                                   bytes: file[(8 + length + offsets[0])..<(8 + length + offsets[1])])
        }
    }

    /// The file's bytes, tensors laid out in name order.
    public var data: Data {
        var header: [String] = []
        var offset = 0
        for name in tensors.keys.sorted() {
            let tensor = tensors[name]!
            let shape = tensor.shape.map(String.init).joined(separator: ",")
            header.append("\"\(name)\":{\"dtype\":\"\(tensor.dtype)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + tensor.bytes.count)]}")
            offset += tensor.bytes.count
        }
        let json = Array(("{" + header.joined(separator: ",") + "}").utf8)
        // Built as bytes and turned into Data once: growing a small Data by appending leaks its first
        // buffer in Foundation on Linux (LeakSanitizer reports it).
        var file = withUnsafeBytes(of: UInt64(json.count).littleEndian) { Array($0) }
        file += json
        for name in tensors.keys.sorted() { file += tensors[name]!.bytes }
        return Data(file)
    }

    /// Writes the file to `url`.
    public func write(to url: URL) throws { try data.write(to: url) }
}
