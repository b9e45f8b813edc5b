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

        /// A float64 tensor (`F64`) of `values`, of the given shape (flat when nil).
        public static func float64(_ values: [Double], shape: [Int]? = nil) -> Tensor {
            Tensor(dtype: "F64", shape: shape ?? [values.count], bytes: values.withUnsafeBytes { Data($0) })
        }
    }

    /// The tensors, by name.
    public var tensors: [String: Tensor]

    /// A file holding `tensors`.
    public init(_ tensors: [String: Tensor]) { self.tensors = tensors }

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
        let json = Data(("{" + header.joined(separator: ",") + "}").utf8)
        var file = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { file.append(contentsOf: $0) }
        file.append(json)
        for name in tensors.keys.sorted() { file.append(tensors[name]!.bytes) }
        return file
    }

    /// Writes the file to `url`.
    public func write(to url: URL) throws { try data.write(to: url) }
}
