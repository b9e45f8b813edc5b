import Foundation

/// The safetensors container (the format Python's `safetensors` package reads): an 8-byte little-endian
/// header length, a JSON header naming each tensor's dtype, shape and byte range, then the raw little-endian
/// data. Regula writes flat float32 (`F32`) and float64 (`F64`) tensors and string metadata, and records in
/// the metadata a CRC-32C of the header and of each tensor (``TensorChecksums``), which it verifies when it
/// reads the file back.
///
/// Reading is strict, in the file's order, and never traps: it refuses, with the reason, everything Python's
/// safetensors refuses (a header that is not one JSON object, a key given twice, a shape or byte range that
/// is negative, fractional or too large, tensors that overlap or leave gaps, bytes after the last tensor)
/// and, when checksums are present, any header or tensor that does not match them.
struct SafeTensors {
    /// One tensor: its element type and its values' raw bytes.
    struct Tensor {
        let dtype: DType
        let bytes: Data
        /// Row-major sizes that multiply to ``count``.
        let shape: [Int]
        var count: Int { bytes.count / dtype.size }

        /// A tensor of `bytes`; flat unless `shape` is given (whose sizes must multiply to the element count).
        init(dtype: DType, bytes: Data, shape: [Int]? = nil) {
            self.dtype = dtype
            self.bytes = bytes
            self.shape = shape ?? [bytes.count / dtype.size]
        }
    }

    /// How the contents of a file that was read were checked.
    enum Integrity: Equatable {
        /// The header and every tensor matched the checksums recorded in the file.
        case verified
        /// The file records no checksums (it was not written by this version of Regula): its structure was
        /// checked, but a changed number could not be noticed.
        case unchecked
    }

    var tensors: [String: Tensor] = [:]
    /// String metadata. The checksum entry (``TensorChecksums/metadataKey``) is not part of it: ``encoded()``
    /// adds it and ``init(decoding:)`` checks and removes it.
    var metadata: [String: String] = [:]
    /// The tensors' names in the order their data lies in the file that was read (empty for a new value).
    private(set) var fileOrder: [String] = []
    /// How the file that was read was checked (``Integrity/unchecked`` for a new value).
    private(set) var integrity = Integrity.unchecked

    /// The longest header Python's safetensors reads; longer ones are refused as it refuses them.
    static let maximumHeaderLength = 100_000_000

    init() {}

    /// The file's bytes: the header padded with spaces so that the data starts at a multiple of 8 bytes, then
    /// the tensors one after the other in name order. The metadata gains the checksums of the header and of
    /// every tensor.
    /// - Throws: ``CheckpointError`` when a tensor is named `__metadata__`.
    func encoded() throws -> Data {
        let names = tensors.keys.sorted()
        if names.contains(Self.metadataName) { throw CheckpointError("a tensor cannot be named \(quoted(Self.metadataName))") }
        var entries: [JSONValue.Member] = []
        var offset = 0
        for name in names {
            let tensor = tensors[name]!
            entries.append(.init(key: name, value: .object([
                "dtype": .string(Self.dtypeNames[tensor.dtype]!),
                "shape": .array(tensor.shape.map(JSONValue.integer)),
                "data_offsets": .array([.integer(offset), .integer(offset + tensor.bytes.count)]),
            ])))
            offset += tensor.bytes.count
        }
        var metadataMembers = metadata.filter { $0.key != TensorChecksums.metadataKey }.sorted { $0.key < $1.key }
            .map { JSONValue.Member(key: $0.key, value: .string($0.value)) }
        let unsigned = JSONValue.object([.init(key: Self.metadataName, value: .object(metadataMembers))] + entries)
        let checksums = TensorChecksums(header: CRC32C.checksum(unsigned.serialized),
                                        tensors: names.map { ($0, tensors[$0]!.bytes.withUnsafeBytes(CRC32C.checksum)) })
        metadataMembers.append(.init(key: TensorChecksums.metadataKey, value: .string(checksums.text)))
        var json = JSONValue.object([.init(key: Self.metadataName, value: .object(metadataMembers))] + entries).serialized
        while (8 + json.count) % 8 != 0 { json.append(0x20) }
        var file = Data(capacity: 8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { file.append(contentsOf: $0) }
        file.append(contentsOf: json)
        for name in names { file.append(tensors[name]!.bytes) }
        return file
    }

    /// Reads a file's bytes, checking every length, range and checksum before keeping anything.
    /// - Throws: ``CheckpointError`` saying what is wrong with the file: the first problem met, reading the
    ///   header in file order, so the same file always gets the same answer.
    init(decoding file: Data) throws(CheckpointError) {
        let (header, data) = try Self.split(file)
        guard var entries = header.members else { throw CheckpointError("the header is \(header.kind), not a JSON object: corrupt file") }
        // The metadata, and the checksum of the header, before anything in it is believed.
        var checksums: TensorChecksums?
        if let position = entries.firstIndex(where: { $0.key == Self.metadataName }) {
            (metadata, checksums) = try Self.metadata(entries[position].value)
            if let checksums {
                var unsigned = entries
                unsigned[position].value = .object(unsigned[position].value.members!.filter { $0.key != TensorChecksums.metadataKey })
                let computed = CRC32C.checksum(JSONValue.object(unsigned).serialized)
                guard computed == checksums.header else {
                    throw CheckpointError("the header does not match the checksum recorded in it (recorded \(CRC32C.hex(checksums.header)), computed \(CRC32C.hex(computed))): the file was damaged or edited")
                }
            }
            entries.remove(at: position)
        }
        var layout: [Entry] = []
        for entry in entries { layout.append(try Entry(entry, dataCount: data.count)) }
        try Self.checkTiling(layout, dataCount: data.count)

        // Every tensor against its checksum.
        let recorded = Dictionary(uniqueKeysWithValues: (checksums?.tensors ?? []).map { ($0.name, $0.checksum) })
        if checksums != nil {
            let names = Set(layout.map(\.name))
            if let stray = checksums!.tensors.first(where: { !names.contains($0.name) }) {
                throw CheckpointError("the checksums name a tensor \(quoted(stray.name)) that the header does not have: corrupt file")
            }
        }
        for entry in layout {
            let bytes = data[(data.startIndex + entry.range.lowerBound)..<(data.startIndex + entry.range.upperBound)]
            if checksums != nil {
                guard let expected = recorded[entry.name] else {
                    throw CheckpointError("tensor \(quoted(entry.name)) has no checksum recorded: corrupt file")
                }
                let computed = bytes.withUnsafeBytes(CRC32C.checksum)
                guard computed == expected else {
                    throw CheckpointError("tensor \(quoted(entry.name)) does not match its checksum (recorded \(CRC32C.hex(expected)), computed \(CRC32C.hex(computed))): its data is damaged")
                }
            }
            tensors[entry.name] = Tensor(dtype: entry.dtype, bytes: Data(bytes), shape: entry.shape)
        }
        fileOrder = layout.map(\.name)
        integrity = checksums == nil ? .unchecked : .verified
    }

    /// Why a safetensors file could not be read: the file itself (missing, not a regular file, a failed
    /// read), or what it holds.
    enum ReadFailure: Error {
        /// The file could not be opened or read.
        case unreadable(FileReadError)
        /// The bytes are not a safetensors file this reader accepts.
        case malformed(CheckpointError)
    }

    /// Reads and decodes the regular file at `url`. Its frame (``frameProblem(start:fileSize:)``) is checked
    /// on its first bytes before the rest is read, so a damaged length field is refused without reading a
    /// large file in full.
    init(contentsOf url: URL) throws(ReadFailure) {
        let data: Data, problem: String?
        do throws(FileReadError) {
            let file = try FileContents.RegularFile(url)
            problem = Self.frameProblem(start: try file.start(Self.startLength), fileSize: file.size)
            data = problem == nil ? try file.contents() : Data()
        } catch { throw .unreadable(error) }
        if let problem { throw .malformed(CheckpointError(problem)) }
        do { try self.init(decoding: data) } catch { throw .malformed(error) }
    }

    /// The header, parsed, and the data after it.
    private static func split(_ file: Data) throws(CheckpointError) -> (JSONValue, Data) {
        if let problem = frameProblem(start: file.prefix(startLength), fileSize: file.count) { throw CheckpointError(problem) }
        let length = headerLength(file)
        let headerBytes = file[(file.startIndex + 8)..<(file.startIndex + 8 + Int(length))]
        do {
            return (try JSONValue(parsing: headerBytes), file[(file.startIndex + 8 + Int(length))...])
        } catch {
            throw CheckpointError("the header is not valid JSON (\(error)): corrupt file")
        }
    }

    /// How many bytes of a file ``frameProblem(start:fileSize:)`` looks at: the length field and the header's
    /// first byte.
    static let startLength = 9

    /// What is wrong with the frame of a file of `fileSize` bytes that begins with `start` (its first
    /// ``startLength`` bytes, or all of a shorter file): a length field beyond ``maximumHeaderLength`` or
    /// beyond the file, or a header that does not begin with `{`. Nil when the frame is sound. Checked before
    /// a file is read in full, so a file of zeros (a header length of 0) is refused after nine bytes.
    static func frameProblem(start: Data, fileSize: Int) -> String? {
        guard fileSize >= 8, start.count >= 8 else { return "the file is \(fileSize) bytes long, too short for a safetensors header" }
        let length = headerLength(start)
        guard length <= UInt64(maximumHeaderLength) else {
            return "the header length field says \(length) bytes, more than safetensors allows (\(maximumHeaderLength)): corrupt file"
        }
        guard length <= UInt64(fileSize - 8) else {
            return "the header claims \(length) bytes but the file has only \(fileSize - 8) after the length field: truncated or corrupt"
        }
        guard length > 0, start.count > 8, start[start.startIndex + 8] == UInt8(ascii: "{") else {
            return "the header does not start with '{': corrupt file, or the header length field is wrong"
        }
        return nil
    }

    /// The little-endian header length in the first eight bytes of `file`.
    private static func headerLength(_ file: Data) -> UInt64 {
        file.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
    }

    /// The string entries of `__metadata__`, and the checksums kept among them.
    private static func metadata(_ value: JSONValue) throws(CheckpointError) -> ([String: String], TensorChecksums?) {
        guard let members = value.members else {
            throw CheckpointError("\(metadataName) is \(value.kind); allowed: an object of strings")
        }
        var metadata: [String: String] = [:]
        var checksums: TensorChecksums?
        for member in members {
            let text = try read.string(member.value, at: "metadata entry \(quoted(member.key))")
            if member.key == TensorChecksums.metadataKey {
                checksums = try TensorChecksums(text: text)
            } else {
                metadata[member.key] = text
            }
        }
        return (metadata, checksums)
    }

    /// One tensor's header entry, checked: a known dtype, a shape of whole numbers whose size fits in memory,
    /// and a byte range inside the data that is exactly that size.
    private struct Entry {
        let name: String
        let dtype: DType
        let shape: [Int]
        let range: Range<Int>

        init(_ entry: JSONValue.Member, dataCount: Int) throws(CheckpointError) {
            let place = "tensor \(quoted(entry.key))"
            let keys = ["dtype", "shape", "data_offsets"]
            let fields = try SafeTensors.read.object(entry.value, at: place, keys: keys, required: keys)
            let dtypeName = try SafeTensors.read.string(fields["dtype"], at: "\(place) dtype")
            guard let dtype = SafeTensors.dtypeNames.first(where: { $0.value == dtypeName })?.key else {
                throw CheckpointError("\(place) has dtype \(quoted(dtypeName)); allowed: F32, F64")
            }
            var elements = 1, sizes: [Int] = []
            let shape = try SafeTensors.read.array(fields["shape"], at: "\(place) shape")
            let shapeText = String(decoding: JSONValue.array(shape).serialized, as: UTF8.self)
            for (axis, dimension) in shape.enumerated() {
                let size = try SafeTensors.read.integer(dimension, at: "\(place) shape[\(axis)]", in: 0...Int.max)
                let (product, overflow) = elements.multipliedReportingOverflow(by: size)
                guard !overflow else { throw CheckpointError("\(place) has shape \(shapeText), more elements than a file can hold: corrupt file") }
                elements = product
                sizes.append(size)
            }
            let (byteCount, overflow) = elements.multipliedReportingOverflow(by: dtype.size)
            guard !overflow else { throw CheckpointError("\(place) has shape \(shapeText), more bytes than a file can hold: corrupt file") }
            let offsets = try SafeTensors.read.array(fields["data_offsets"], at: "\(place) data_offsets")
            guard offsets.count == 2 else {
                throw CheckpointError("\(place) data_offsets has \(offsets.count) numbers; allowed: 2, the first byte and the end")
            }
            let begin = try SafeTensors.read.integer(offsets[0], at: "\(place) data_offsets[0]", in: 0...Int.max)
            let end = try SafeTensors.read.integer(offsets[1], at: "\(place) data_offsets[1]", in: 0...Int.max)
            guard begin <= end, end <= dataCount else {
                throw CheckpointError("\(place) has byte range \(begin)..<\(end), outside the \(dataCount) bytes of data: truncated or corrupt")
            }
            guard end - begin == byteCount else {
                throw CheckpointError("\(place) has byte range \(begin)..<\(end) (\(end - begin) bytes) but its shape \(shapeText) of \(dtypeName) needs \(byteCount): corrupt file")
            }
            name = entry.key
            self.dtype = dtype
            self.shape = sizes
            range = begin..<end
        }
    }

    /// Refuses ranges that overlap, leave bytes to no tensor, or stop before the end of the data: the tensors
    /// must tile the data exactly, as Python's safetensors requires.
    private static func checkTiling(_ layout: [Entry], dataCount: Int) throws(CheckpointError) {
        var covered = 0
        var previous: Entry?
        for entry in layout.sorted(by: { ($0.range.lowerBound, $0.range.upperBound) < ($1.range.lowerBound, $1.range.upperBound) }) {
            if let previous, entry.range.lowerBound < covered {
                throw CheckpointError("the byte ranges of tensors \(quoted(previous.name)) (\(previous.range.lowerBound)..<\(previous.range.upperBound)) and \(quoted(entry.name)) (\(entry.range.lowerBound)..<\(entry.range.upperBound)) overlap: corrupt file")
            }
            if entry.range.lowerBound > covered {
                throw CheckpointError("data bytes \(covered)..<\(entry.range.lowerBound) belong to no tensor: corrupt file")
            }
            covered = entry.range.upperBound
            previous = entry
        }
        guard covered == dataCount else {
            throw CheckpointError("the file has \(dataCount - covered) bytes after the last tensor's data: corrupt file, or something was appended")
        }
    }

    /// Reads the header's fields.
    private static let read = JSONFieldReader<CheckpointError>()

    /// The header key that holds the metadata rather than a tensor.
    static let metadataName = "__metadata__"

    /// The safetensors name of each element type.
    private static let dtypeNames: [DType: String] = [.float32: "F32", .float64: "F64"]

}
