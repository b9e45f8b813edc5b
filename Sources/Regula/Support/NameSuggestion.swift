/// The candidate closest to `name` by edit distance, if it is close enough to be a likely typo
/// (at most a third of the name's length, and at least one edit allowed).
func suggestion(for name: String, among candidates: some Sequence<String>) -> String? {
    let limit = max(1, name.count / 3)
    var best: (name: String, distance: Int)?
    for candidate in candidates {
        let distance = editDistance(name, candidate)
        if distance <= limit, distance < (best?.distance ?? .max) { best = (candidate, distance) }
    }
    return best?.name
}

/// ` (did you mean "x"?)`, or nothing.
func didYouMean(_ name: String, among candidates: some Sequence<String>) -> String {
    suggestion(for: name, among: candidates).map { " (did you mean \(quoted($0))?)" } ?? ""
}

/// Edit distance over Unicode scalars, counting an insertion, a deletion, a substitution or a swap of two
/// neighbours as one edit (optimal string alignment), so that `moun` is one edit from `muon`.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a.unicodeScalars), b = Array(b.unicodeScalars)
    var beforePrevious: [Int] = [], previous = Array(0...b.count)
    for i in 1...max(a.count, 1) where !a.isEmpty {
        var current = [i] + Array(repeating: 0, count: b.count)
        for j in stride(from: 1, through: b.count, by: 1) {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] { current[j] = min(current[j], beforePrevious[j - 2] + 1) }
        }
        (beforePrevious, previous) = (previous, current)
    }
    return a.isEmpty ? b.count : previous[b.count]
}

/// The candidate closest to `name`, if it is close enough to be a likely typo: what "did you mean" messages
/// suggest. For tools built on Regula that check names of their own.
public func closestName(to name: String, among candidates: some Sequence<String>) -> String? {
    suggestion(for: name, among: candidates)
}
