import ArgumentParser
import Foundation
import SwiftQCore
import SwiftQRuntime

/// Prints `error` as one line on standard error and exits with code 2: the CLI's single error path.
func failing<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let e as ModelError {
        printError(e.description)
        throw ExitCode(2)
    } catch let e as CLIError {
        printError(e.message)
        throw ExitCode(2)
    } catch let e as ExitCode {
        throw e
    } catch let e as CustomStringConvertible {
        printError(e.description)
        throw ExitCode(2)
    } catch {
        printError("\(error)")
        throw ExitCode(2)
    }
}

struct CLIError: Error {
    var message: String
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data("swiftq: error: \(message)\n".utf8))
}

func printWarning(_ message: String) {
    FileHandle.standardError.write(Data("swiftq: warning: \(message)\n".utf8))
}

/// Writes a JSON object to standard output when `path` is "-", else into the run's outputs (reserved first).
func writeJSON(_ object: Any, to path: String, outputs: OutputFiles) throws {
    let data: Data
    do {
        data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    } catch {
        throw CLIError(message: "cannot encode JSON: \(error)")
    }
    if path == "-" {
        FileHandle.standardOutput.write(data + Data("\n".utf8))
        return
    }
    try outputs.write(data + Data("\n".utf8), to: path)
}

/// `NAME=1x3x224x224` (or with commas) as an input shape override.
struct InputShape: ExpressibleByArgument {
    var name: String
    var dims: [Int]

    init?(argument: String) {
        guard let eq = argument.lastIndex(of: "=") else { return nil }
        name = String(argument[..<eq])
        let parts = argument[argument.index(after: eq)...].split(whereSeparator: { $0 == "x" || $0 == "," })
        let d = parts.compactMap { Int($0) }
        guard !name.isEmpty, !d.isEmpty, d.count == parts.count, d.allSatisfy({ $0 >= 0 }) else { return nil }
        dims = d
    }

    static var defaultCompletionKind: CompletionKind { .default }
}

/// 1234567 → "1.23 M"; for counts of MACs and parameters.
func humanCount(_ n: Int) -> String {
    let v = Double(n)
    if v >= 1e9 { return String(format: "%.2f G", v / 1e9) }
    if v >= 1e6 { return String(format: "%.2f M", v / 1e6) }
    if v >= 1e3 { return String(format: "%.1f k", v / 1e3) }
    return "\(n)"
}

/// One console fact: its label padded to 12 columns, then the value ("model       digits.onnx ...").
func factLine(_ label: String, _ value: String) -> String { label.padding(toLength: 12, withPad: " ", startingAt: 0) + value }

/// A file's size in bytes (0 when it cannot be read).
func fileSize(_ path: String) -> Int {
    ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
}

func humanBytes(_ n: Int) -> String {
    let v = Double(n)
    if v >= 1_073_741_824 { return String(format: "%.2f GiB", v / 1_073_741_824) }
    if v >= 1_048_576 { return String(format: "%.1f MiB", v / 1_048_576) }
    if v >= 1024 { return String(format: "%.1f KiB", v / 1024) }
    return "\(n) B"
}

func shapeText(_ dims: [Dim]?) -> String {
    guard let dims else { return "[?]" }
    return "[" + dims.map(\.description).joined(separator: ", ") + "]"
}

func shapeJSON(_ dims: [Dim]?) -> Any {
    guard let dims else { return NSNull() }
    return dims.map { d -> Any in
        switch d {
        case .value(let v): v
        case .symbol(let s): s
        case .unknown: NSNull()
        }
    }
}

/// Runs `body`, naming `path` in front of a runtime error that does not name a file yet ("node 'x' (Resize):
/// not supported" becomes "m.onnx: node 'x' (Resize): not supported").
func naming<T>(_ path: String, _ body: () throws -> T) throws -> T {
    do { return try body() } catch let e as RuntimeError { throw CLIError(message: "\(path): \(e)") }
}

/// Reserves an optional output file in `outputs` before any work (nothing for "-", standard output).
func reserve(_ path: String?, role: String, in outputs: OutputFiles) throws {
    guard let path, path != "-" else { return }
    try outputs.reserve(path, role: role)
}

/// An Encodable value as the JSONSerialization objects `writeJSON` takes (snake_case keys).
func jsonObject<T: Encodable>(_ value: T) throws -> Any {
    let e = JSONEncoder()
    e.keyEncodingStrategy = .convertToSnakeCase
    e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return try JSONSerialization.jsonObject(with: e.encode(value), options: [.fragmentsAllowed])
}
