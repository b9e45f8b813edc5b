import RegulaABI

/// A host-owned buffer a plugin writes its error words into (`regula_message`), reused across calls.
final class MessageBuffer {
    static let capacity = 1024
    private let storage = UnsafeMutablePointer<CChar>.allocate(capacity: MessageBuffer.capacity)
    /// The `regula_message` handed to plugins; points at `storage`.
    let message: UnsafeMutablePointer<regula_message>

    init() {
        message = .allocate(capacity: 1)
        message.initialize(to: regula_message(text: storage, capacity: MessageBuffer.capacity))
        clear()
    }

    deinit {
        storage.deallocate()
        message.deallocate()
    }

    /// Empties the text before a call.
    func clear() { storage[0] = 0 }

    /// What the plugin wrote, forced to end inside the buffer, or `fallback` if it wrote nothing.
    func text(or fallback: String) -> String {
        storage[MessageBuffer.capacity - 1] = 0
        let words = String(cString: storage)
        return words.isEmpty ? fallback : words
    }
}
