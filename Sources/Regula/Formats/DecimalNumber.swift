import Foundation

/// Decimal text to the nearest `Double` (correct rounding, ties to even), as Python's `float()` and
/// `strtod` read it, and fast for the short numbers that fill most recordings.
enum DecimalNumber {
    /// Exact powers of ten: every one up to 10^22 is a `Double` without rounding.
    private static let powersOfTen: [Double] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12,
                                                1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22]

    /// The `Double` nearest to `text`, a number in JSON's grammar (checked by the caller); ±infinity beyond
    /// float64's range, ±0 or a subnormal below it.
    ///
    /// When the significant digits form an integer m ≤ 2^53 and the power of ten p is within ±22, both m and
    /// 10^|p| are exact doubles and one multiplication or division rounds correctly (Clinger's fast path).
    /// Every other number goes to the C library's `strtod`, which rounds correctly; should a locale make it
    /// stop short of the end, to Swift's locale-independent `Double(_:)`.
    static func nearestDouble(to text: UnsafeBufferPointer<UInt8>) -> Double {
        var index = 0
        let negative = text[0] == UInt8(ascii: "-")
        if negative { index += 1 }
        // The first 19 significant digits as an integer, and the power of ten that scales them.
        var significand: UInt64 = 0
        var significantDigits = 0
        var power = 0
        var fraction = false
        while index < text.count {
            let byte = text[index]
            if byte == UInt8(ascii: ".") {
                fraction = true
            } else if JSONReader.isDigit(byte) {
                if significantDigits < 19 {
                    significand = significand &* 10 &+ UInt64(byte &- UInt8(ascii: "0"))
                    if significand != 0 { significantDigits += 1 }
                    if fraction { power -= 1 }
                } else {
                    significantDigits += 1
                    if !fraction { power += 1 }
                }
            } else {
                break
            }
            index += 1
        }
        if index < text.count {
            // An exponent: e, an optional sign, digits (saturated; anything that large is 0 or infinite).
            index += 1
            let negativeExponent = text[index] == UInt8(ascii: "-")
            if text[index] == UInt8(ascii: "-") || text[index] == UInt8(ascii: "+") { index += 1 }
            var exponent = 0
            while index < text.count {
                exponent = min(exponent * 10 + Int(text[index] &- UInt8(ascii: "0")), 1_000_000)
                index += 1
            }
            power += negativeExponent ? -exponent : exponent
        }
        if significantDigits <= 19, significand <= 1 << 53, (-22...22).contains(power) {
            let magnitude = power >= 0 ? Double(significand) * powersOfTen[power] : Double(significand) / powersOfTen[-power]
            return negative ? -magnitude : magnitude
        }
        return correctlyRounded(text)
    }

    private static func correctlyRounded(_ text: UnsafeBufferPointer<UInt8>) -> Double {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: text.count + 1) { buffer in
            _ = buffer.initialize(from: UnsafeRawBufferPointer(text).bindMemory(to: CChar.self))
            buffer[text.count] = 0
            var end: UnsafeMutablePointer<CChar>?
            let value = strtod(buffer.baseAddress!, &end)
            if end == buffer.baseAddress! + text.count { return value }
            return Double(String(decoding: text, as: UTF8.self)) ?? .nan
        }
    }
}
