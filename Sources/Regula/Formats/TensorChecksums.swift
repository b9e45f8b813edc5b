/// The checksums a file written by Regula records in its safetensors metadata, under `regula.checksums`, as
/// a JSON string:
///
/// ```json
/// {"algorithm":"crc32c","header":"1c291ca3","tensors":{"param/b":"8a9136aa","param/w":"0b2ba6ee"}}
/// ```
///
/// `tensors` holds the CRC-32C of each tensor's bytes. `header` is the CRC-32C of the header with this entry
/// left out, written as compact JSON with members in file order (``JSONValue/serialized``, which is what
/// Python's `json.dumps(header, separators=(",", ":"), ensure_ascii=False)` gives): it covers every tensor's
/// name, dtype, shape and byte range and every other metadata entry. A change to any of them, to a tensor's
/// bytes or to this entry itself is detected (Docs/Checkpoints.md shows the check in Python).
struct TensorChecksums {
    /// The metadata key.
    static let metadataKey = "regula.checksums"
    /// The only algorithm written and read.
    static let algorithm = "crc32c"

    /// The checksum of the header without this entry.
    var header: UInt32
    /// Each tensor's checksum, in file order.
    var tensors: [(name: String, checksum: UInt32)]

    init(header: UInt32, tensors: [(name: String, checksum: UInt32)]) {
        self.header = header
        self.tensors = tensors
    }

    /// The JSON text stored in the metadata.
    var text: String {
        let json = JSONValue.object([
            "algorithm": .string(Self.algorithm),
            "header": .string(CRC32C.hex(header)),
            "tensors": .object(tensors.map { .init(key: $0.name, value: .string(CRC32C.hex($0.checksum))) }),
        ])
        return String(decoding: json.serialized, as: UTF8.self)
    }

    /// Reads ``text`` back.
    /// - Throws: ``CheckpointError`` when it is not exactly that form.
    init(text: String) throws(CheckpointError) {
        let place = "metadata entry \(quoted(Self.metadataKey))"
        let json: JSONValue
        do { json = try JSONValue(parsing: Array(text.utf8)) } catch {
            throw CheckpointError("\(place) is not valid JSON (\(error)): corrupt file")
        }
        let keys = ["algorithm", "header", "tensors"]
        let fields = try Self.read.object(json, at: place, keys: keys, required: keys)
        let algorithm = try Self.read.string(fields["algorithm"], at: "\(place) algorithm")
        guard algorithm == Self.algorithm else {
            throw CheckpointError("\(place) uses the checksum \(quoted(algorithm)); this Regula knows \(quoted(Self.algorithm))")
        }
        header = try Self.checksum(fields["header"]!, at: "\(place) header")
        guard let members = fields["tensors"]!.members else {
            throw CheckpointError("\(place) tensors is \(fields["tensors"]!.kind); allowed: an object")
        }
        var tensors: [(name: String, checksum: UInt32)] = []
        for member in members {
            tensors.append((member.key, try Self.checksum(member.value, at: "\(place) tensors[\(quoted(member.key))]")))
        }
        self.tensors = tensors
    }

    private static let read = JSONFieldReader<CheckpointError>()

    private static func checksum(_ value: JSONValue, at place: String) throws(CheckpointError) -> UInt32 {
        guard let checksum = CRC32C.value(hex: try read.string(value, at: place)) else {
            throw CheckpointError("\(place) is \(value.kind); allowed: 8 lower-case hexadecimal digits")
        }
        return checksum
    }
}
