/// An array whose memory is kept for the next user: `take()` hands it over empty, `give(_:)` returns it.
final class ReusedArray<Element> {
    private var storage: [Element] = []

    func take() -> [Element] {
        var taken: [Element] = []
        swap(&taken, &storage)
        taken.removeAll(keepingCapacity: true)
        return taken
    }

    func give(_ array: [Element]) { storage = array }
}
