import Foundation

/// The safetensors container (the format Python's `safetensors` package reads): an 8-byte little-endian
/// header length, a JSON header naming each tensor's dtype, shape and byte range, then the raw little-endian
/// data. Regula writes flat float32 (`F32`) and float64 (`F64`) tensors and string metadata.
struct SafeTensors {
    /// One tensor: its element type and its values' raw bytes.
    struct Tensor {
        let dtype: DType
        let bytes: Data
        var count: Int { bytes.count / dtype.size }
    }

    var tensors: [String: Tensor] = [:]
    var metadata: [String: String] = [:]

    init() {}

    /// The file's bytes. Tensors are laid out in name order, each aligned to 8 bytes.
    func encoded() throws -> Data {
        var header: [String: Any] = ["__metadata__": metadata]
        var offset = 0
        let names = tensors.keys.sorted()
        for name in names {
            let tensor = tensors[name]!
            header[name] = ["dtype": tensor.dtype == .float32 ? "F32" : "F64", "shape": [tensor.count],
                            "data_offsets": [offset, offset + tensor.bytes.count]]
            offset += tensor.bytes.count
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while (8 + json.count) % 8 != 0 { json.append(0x20) }
        var file = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { file.append(contentsOf: $0) }
        file.append(json)
        for name in names { file.append(tensors[name]!.bytes) }
        return file
    }

    /// Reads a file's bytes, checking every length and range.
    /// - Throws: ``CheckpointError`` saying what is wrong with the file.
    init(decoding file: Data) throws(CheckpointError) {
        guard file.count >= 8 else { throw CheckpointError("the file is \(file.count) bytes long, too short for a safetensors header") }
        let length = file.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard length <= UInt64(file.count - 8) else {
            throw CheckpointError("the header claims \(length) bytes but the file has only \(file.count - 8) after it: truncated or corrupt")
        }
        let start = file.startIndex + 8, dataStart = start + Int(length)
        guard let header = try? JSONSerialization.jsonObject(with: file[start..<dataStart]) as? [String: Any] else {
            throw CheckpointError("the safetensors header is not a JSON object: corrupt file")
        }
        let dataLength = file.count - 8 - Int(length)
        for (name, entry) in header {
            if name == "__metadata__" {
                guard let metadata = entry as? [String: String] else { throw CheckpointError("__metadata__ is not a map of strings") }
                self.metadata = metadata
                continue
            }
            guard let fields = entry as? [String: Any], let dtypeName = fields["dtype"] as? String,
                  let shape = fields["shape"] as? [Int], let offsets = fields["data_offsets"] as? [Int], offsets.count == 2
            else { throw CheckpointError("tensor \(quoted(name)) has a malformed entry in the header: corrupt file") }
            let dtype: DType
            switch dtypeName {
            case "F32": dtype = .float32
            case "F64": dtype = .float64
            default: throw CheckpointError("tensor \(quoted(name)) has dtype \(dtypeName); allowed: F32, F64")
            }
            let elements = shape.reduce(1, *)
            guard offsets[0] >= 0, offsets[0] <= offsets[1], offsets[1] <= dataLength,
                  offsets[1] - offsets[0] == elements * dtype.size
            else { throw CheckpointError("tensor \(quoted(name)) has byte range \(offsets) outside the data or not matching its shape \(shape): truncated or corrupt") }
            tensors[name] = Tensor(dtype: dtype, bytes: Data(file[(dataStart + offsets[0])..<(dataStart + offsets[1])]))
        }
    }
}
