import Foundation

/// The safetensors files a spec names for its parameters and gradients: paths resolved against the spec's
/// folder, tensors checked against the spec, every refusal naming the field and the file.
///
/// A tensor of any shape is flattened in row-major order (torch's order for a contiguous tensor). Its
/// safetensors dtype must be the spec's: `F32` for float32, `F64` for float64. Every value must be finite.
struct SpecFiles {
    /// Where relative paths start.
    let folder: URL

    /// `path` resolved against ``folder`` (an absolute path stays as it is), checked to be a readable regular
    /// file: never a pipe or a device, which could block the replay or never end.
    func existing(_ path: String, at place: String) throws(ReplayError) -> URL {
        guard !path.isEmpty else { throw ReplayError("\(place) is an empty path; it must name a safetensors file") }
        let url = URL(fileURLWithPath: path, relativeTo: folder).absoluteURL
        do { try FileContents.checkRegularFile(url) } catch { throw ReplayError("\(place): \(error)") }
        return url
    }

    /// The parameters in the safetensors file at `path`, and their element type: `dtype` when the spec
    /// names one (every tensor must have it), else the one all the tensors share.
    func parameters(_ path: String, dtype named: DType?) throws(ReplayError) -> ([String: ReplayTensor], [String: [Int]], DType) {
        let place = "spec.params"
        let url = try existing(path, at: place)
        let file = try Self.read(url, at: place)
        let names = file.tensors.keys.sorted()
        let dtype = named ?? names.first.map { file.tensors[$0]!.dtype } ?? .float32
        var parameters: [String: ReplayTensor] = [:], shapes: [String: [Int]] = [:]
        for name in names {
            let tensor = file.tensors[name]!
            shapes[name] = tensor.shape
            guard tensor.dtype == dtype else {
                throw ReplayError(named == nil
                    ? "\(place): \(url.path) mixes \(Self.fileName(dtype)) tensors (\(quoted(names[0]))) and "
                      + "\(Self.fileName(tensor.dtype)) tensors (\(quoted(name))); a spec's parameters share one dtype"
                    : "\(place): tensor \(quoted(name)) in \(url.path) is \(Self.fileName(tensor.dtype)), but spec.dtype is "
                      + "\(dtype), so it must be \(Self.fileName(dtype)); set spec.dtype to \(quoted(tensor.dtype.rawValue)) "
                      + "or save the parameters as \(dtype)")
            }
            parameters[name] = try ReplayTensor(bytes: tensor.bytes, as: dtype, at: "\(place) (\(url.path)) tensor \(quoted(name))")
        }
        return (parameters, shapes, dtype)
    }

    /// The gradients in the safetensors file at `url`, for the step at `place`: each tensor must be the
    /// gradient of a parameter the spec defines, with its element count, in the spec's dtype.
    static func gradients(at url: URL, for place: String, parameters: [String: ReplayTensor], dtype: DType)
        throws(ReplayError) -> [String: ReplayTensor] {
        let file = try read(url, at: place)
        var gradients: [String: ReplayTensor] = [:]
        for name in file.tensors.keys.sorted() {
            let tensor = file.tensors[name]!
            let source = "\(place) (\(url.path))"
            try ReplaySpec.checkGradient(name, count: tensor.count, against: parameters, at: source)
            guard tensor.dtype == dtype else {
                throw ReplayError("\(source): the gradient for parameter \(quoted(name)) is \(fileName(tensor.dtype)); "
                                  + "the spec's parameters are \(dtype), so it must be \(fileName(dtype))")
            }
            gradients[name] = try ReplayTensor(bytes: tensor.bytes, as: dtype, at: "\(source) tensor \(quoted(name))")
        }
        return gradients
    }

    private static func read(_ url: URL, at place: String) throws(ReplayError) -> SafeTensors {
        do { return try SafeTensors(contentsOf: url) } catch {
            switch error {
            case .unreadable(let error): throw ReplayError("\(place): \(error)")
            case .malformed(let error):
                throw ReplayError("\(place): \(url.path) is not a safetensors file of F32 or F64 tensors: \(error)")
            }
        }
    }

    /// The safetensors name of a dtype: `F32`, `F64`.
    private static func fileName(_ dtype: DType) -> String { dtype == .float32 ? "F32" : "F64" }
}
