import COnnx
import Foundation
import SwiftQCore

/// Reads an ONNX model file (protobuf, optionally with external tensor data beside it) into the IR.
public enum ONNXReader {
    /// Reads and validates `path`. Throws `ModelError` for a missing, unreadable, corrupt or non-ONNX file,
    /// an unknown operator, an unsupported tensor type or a structurally invalid graph.
    /// `externalFile` is told the path of every external data file the model's tensors are read from.
    public static func read(path: String, validate: Bool = true, externalFile: ((String) -> Void)? = nil) throws -> Model {
        guard FileManager.default.fileExists(atPath: path) else { throw ModelError.fileNotFound(path: path) }
        let data: Data
        do {
            // Protobuf's own limit is 2 GiB; larger weights live in external data files.
            data = try FileBytes.read(path, maxBytes: Int(Int32.max))
        } catch {
            throw ModelError.unreadable(path: path, reason: "\(error)")
        }
        let base = PathNames.folder(of: path)
        let model = try data.withUnsafeBytes {
            try read(bytes: $0, path: path, baseDirectory: base, externalFile: externalFile)
        }
        if validate { try model.validate(path: path) }
        return model
    }

    /// Parses serialized ModelProto bytes. `baseDirectory` is where external data files are looked up
    /// (nil: external data is an error). `path` names the source in errors.
    public static func read(bytes: UnsafeRawBufferPointer, path: String, baseDirectory: String?,
                            externalFile: ((String) -> Void)? = nil) throws -> Model {
        guard bytes.count > 0, let base = bytes.baseAddress else { throw ModelError.notONNX(path: path, reason: "the file is empty") }
        guard let proto = onnx__model_proto__unpack(nil, bytes.count, base.assumingMemoryBound(to: UInt8.self)) else {
            throw ModelError.notONNX(path: path, reason: "protobuf parse failed (the file is truncated, corrupt, or not ONNX)")
        }
        defer { onnx__model_proto__free_unpacked(proto, nil) }
        let context = ReadContext(path: path, baseDirectory: baseDirectory)
        context.onExternalFile = externalFile
        return try context.model(proto.pointee)
    }
}

extension ONNXReader {
    /// Reads a serialized TensorProto file (the `input_N.pb` / `output_N.pb` files of ONNX test data).
    /// Returns the tensor's name and value.
    public static func readTensor(path: String) throws -> (name: String, tensor: Tensor) {
        guard FileManager.default.fileExists(atPath: path) else { throw ModelError.fileNotFound(path: path) }
        let data: Data
        do { data = try FileBytes.read(path, maxBytes: Int(Int32.max)) } catch {
            throw ModelError.unreadable(path: path, reason: "\(error)")
        }
        return try data.withUnsafeBytes { b in
            guard let base = b.baseAddress, b.count > 0,
                  let proto = onnx__tensor_proto__unpack(nil, b.count, base.assumingMemoryBound(to: UInt8.self)) else {
                throw ModelError.notONNX(path: path, reason: "not a serialized TensorProto")
            }
            defer { onnx__tensor_proto__free_unpacked(proto, nil) }
            let context = ReadContext(path: path, baseDirectory: nil)
            let name = context.string(proto.pointee.name)
            return (name, try context.tensor(proto.pointee, name: name.isEmpty ? path : name))
        }
    }
}

/// Per-read state: the file name for messages and open external-data files.
private final class ReadContext {
    let path: String
    let baseDirectory: String?
    var externalFiles: [String: FileHandle] = [:]
    var onExternalFile: ((String) -> Void)?

    init(path: String, baseDirectory: String?) {
        self.path = path
        self.baseDirectory = baseDirectory
    }

    deinit { for h in externalFiles.values { try? h.close() } }

    func model(_ m: Onnx__ModelProto) throws -> Model {
        guard m.has_ir_version != 0, let g = m.graph else {
            throw ModelError.notONNX(path: path, reason: m.graph == nil ? "no graph in the file" : "no IR version in the file")
        }
        var opsets: [OpsetID] = []
        for i in 0..<m.n_opset_import {
            guard let o = m.opset_import[i] else { continue }
            opsets.append(OpsetID(domain: string(o.pointee.domain), version: o.pointee.has_version != 0 ? o.pointee.version : 0))
        }
        var meta: [(key: String, value: String)] = []
        for i in 0..<m.n_metadata_props {
            guard let p = m.metadata_props[i] else { continue }
            meta.append((string(p.pointee.key), string(p.pointee.value)))
        }
        var functions: [[UInt8]] = []
        for i in 0..<m.n_functions { if let f = m.functions[i] { functions.append(pack(f)) } }
        var training: [[UInt8]] = []
        for i in 0..<m.n_training_info { if let t = m.training_info[i] { training.append(pack(t)) } }
        return Model(
            irVersion: m.ir_version, opsetImports: opsets, producerName: string(m.producer_name),
            producerVersion: string(m.producer_version), domain: string(m.domain),
            modelVersion: m.has_model_version != 0 ? m.model_version : 0, docString: string(m.doc_string),
            metadataProps: meta, graph: try graph(g.pointee), packedFunctions: functions, packedTrainingInfo: training)
    }

    func graph(_ g: Onnx__GraphProto) throws -> Graph {
        if g.n_sparse_initializer > 0 {
            throw ModelError.invalid(path: path, what: "graph '\(string(g.name))' has sparse initializers, which swiftq does not support")
        }
        var out = Graph(name: string(g.name), docString: string(g.doc_string))
        out.nodes.reserveCapacity(g.n_node)
        for i in 0..<g.n_node { if let n = g.node[i] { out.nodes.append(try node(n.pointee)) } }
        for i in 0..<g.n_input { if let v = g.input[i] { out.inputs.append(try valueInfo(v.pointee)) } }
        for i in 0..<g.n_output { if let v = g.output[i] { out.outputs.append(try valueInfo(v.pointee)) } }
        for i in 0..<g.n_value_info { if let v = g.value_info[i] { out.valueInfo.append(try valueInfo(v.pointee)) } }
        out.initializers.reserveCapacity(g.n_initializer)
        for i in 0..<g.n_initializer {
            guard let t = g.initializer[i] else { continue }
            let name = string(t.pointee.name)
            guard !name.isEmpty else { throw ModelError.invalid(path: path, what: "initializer #\(i) has no name") }
            out.initializers.append(Initializer(name: name, tensor: try tensor(t.pointee, name: name), docString: string(t.pointee.doc_string)))
        }
        return out
    }

    func node(_ n: Onnx__NodeProto) throws -> Node {
        var result = Node(name: string(n.name), opType: string(n.op_type), domain: string(n.domain),
                          inputs: strings(n.input, n.n_input), outputs: strings(n.output, n.n_output),
                          docString: string(n.doc_string))
        for i in 0..<n.n_attribute {
            guard let a = n.attribute[i] else { continue }
            result.attributes.append(try attribute(a, node: result))
        }
        return result
    }

    func attribute(_ ap: UnsafeMutablePointer<Onnx__AttributeProto>, node: Node) throws -> Attribute {
        let a = ap.pointee
        let name = string(a.name)
        let where_ = "node '\(node.displayName)' attribute '\(name)'"
        var kind = a.has_type != 0 ? a.type.rawValue : 0
        if kind == 0 {
            // Before IR version 2 the type field did not exist: infer it from the field that is set.
            if a.has_f != 0 { kind = 1 } else if a.has_i != 0 { kind = 2 } else if a.has_s != 0 { kind = 3 }
            else if a.t != nil { kind = 4 } else if a.g != nil { kind = 5 } else if a.n_floats > 0 { kind = 6 }
            else if a.n_ints > 0 { kind = 7 } else if a.n_strings > 0 { kind = 8 } else if a.n_tensors > 0 { kind = 9 }
            else if a.n_graphs > 0 { kind = 10 }
        }
        let value: AttributeValue
        switch kind {
        case 1: value = .float(a.f)
        case 2: value = .int(a.i)
        case 3: value = .string(bytesString(a.s))
        case 4:
            guard let t = a.t else { throw ModelError.invalid(path: path, what: "\(where_) has no tensor") }
            value = .tensor(try tensor(t.pointee, name: "\(name) of node '\(node.displayName)'"))
        case 5:
            guard let g = a.g else { throw ModelError.invalid(path: path, what: "\(where_) has no graph") }
            value = .graph(try graph(g.pointee))
        case 6: value = .floats(a.n_floats == 0 ? [] : Array(UnsafeBufferPointer(start: a.floats, count: a.n_floats)))
        case 7: value = .ints(a.n_ints == 0 ? [] : Array(UnsafeBufferPointer(start: a.ints, count: a.n_ints)))
        case 8: value = .strings((0..<a.n_strings).map { bytesString(a.strings[$0]) })
        case 9: value = .tensors(try (0..<a.n_tensors).compactMap { a.tensors[$0] }.map { try tensor($0.pointee, name: name) })
        case 10: value = .graphs(try (0..<a.n_graphs).compactMap { a.graphs[$0] }.map { try graph($0.pointee) })
        case 11...14: value = .opaque(packedAttribute: pack(ap))
        default: throw ModelError.invalid(path: path, what: "\(where_) has unknown attribute type \(kind)")
        }
        return Attribute(name: name, value: value, docString: string(a.doc_string), refAttrName: string(a.ref_attr_name))
    }

    func valueInfo(_ v: Onnx__ValueInfoProto) throws -> ValueInfo {
        let name = string(v.name)
        guard let tp = v.type else { return ValueInfo(name: name, type: nil, docString: string(v.doc_string)) }
        let type: ValueType
        if tp.pointee.value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE, let tt = tp.pointee.tensor_type {
            var shape: [Dim]? = nil
            if let s = tt.pointee.shape {
                shape = (0..<s.pointee.n_dim).map { i in
                    guard let d = s.pointee.dim[i] else { return .unknown }
                    switch d.pointee.value_case {
                    case ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE: return .value(Int(clamping: d.pointee.dim_value))
                    case ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM: return .symbol(string(d.pointee.dim_param))
                    default: return .unknown
                    }
                }
            }
            type = .tensor(elemType: tt.pointee.has_elem_type != 0 ? tt.pointee.elem_type : 0, shape: shape)
        } else {
            type = .opaque(packedTypeProto: pack(tp))
        }
        return ValueInfo(name: name, type: type, docString: string(v.doc_string))
    }

    func tensor(_ t: Onnx__TensorProto, name: String) throws -> Tensor {
        let code = t.has_data_type != 0 ? t.data_type : 0
        guard let dtype = DType(rawValue: code), let size = dtype.byteSize else {
            throw ModelError.unsupportedTensorType(path: path, tensor: name, type: code == 0 ? "UNDEFINED" : DType.name(ofCode: code))
        }
        if t.segment != nil { throw ModelError.invalid(path: path, what: "tensor '\(name)' is segmented, which swiftq does not support") }
        let shape = (0..<t.n_dims).map { Int(clamping: t.dims[$0]) }
        guard let count = Tensor.elementCount(shape), count.multipliedReportingOverflow(by: size).overflow == false else {
            throw ModelError.invalid(path: path, what: "tensor '\(name)' has invalid dimensions \(shape)")
        }
        var bytes: [UInt8]
        let stored = dtype.isNibble ? (count + 1) / 2 : count * size
        if t.has_data_location != 0 && t.data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL {
            bytes = try external(t, name: name, byteCount: stored)
        } else if t.raw_data.len > 0 {
            bytes = Array(UnsafeBufferPointer(start: t.raw_data.data, count: t.raw_data.len))
        } else {
            bytes = try typedFields(t, dtype: dtype, name: name)
        }
        if dtype.isNibble {
            guard bytes.count == stored else {
                throw ModelError.invalid(path: path, what: "tensor '\(name)' of shape \(shape) and type \(dtype) holds \(bytes.count) packed bytes, expected \(stored)")
            }
            bytes = Nibbles.unpack(bytes, count: count, signed: dtype == .int4)
        }
        guard let tensor = Tensor(dtype: dtype, shape: shape, bytes: bytes) else {
            throw ModelError.invalid(path: path, what: "tensor '\(name)' of shape \(shape) and type \(dtype) holds \(bytes.count / size) elements, expected \(count)")
        }
        return tensor
    }

    /// Values stored in the typed repeated fields, as little-endian bytes of `dtype`.
    func typedFields(_ t: Onnx__TensorProto, dtype: DType, name: String) throws -> [UInt8] {
        func le<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] { values.map { $0.littleEndian }.withUnsafeBytes { Array($0) } }
        func buffer<T>(_ p: UnsafeMutablePointer<T>?, _ n: Int) -> [T] { n == 0 || p == nil ? [] : Array(UnsafeBufferPointer(start: p, count: n)) }
        let int32s = buffer(t.int32_data, t.n_int32_data)
        switch dtype {
        case .float: return le(buffer(t.float_data, t.n_float_data).map { $0.bitPattern })
        case .double: return le(buffer(t.double_data, t.n_double_data).map { $0.bitPattern })
        case .int64: return le(buffer(t.int64_data, t.n_int64_data))
        case .int32: return le(int32s)
        case .int16: return le(int32s.map { Int16(truncatingIfNeeded: $0) })
        case .uint16, .float16, .bfloat16: return le(int32s.map { UInt16(truncatingIfNeeded: $0) })
        case .int8: return le(int32s.map { Int8(truncatingIfNeeded: $0) })
        case .uint8, .bool, .int4, .uint4: return int32s.map { UInt8(truncatingIfNeeded: $0) }
        case .uint32: return le(buffer(t.uint64_data, t.n_uint64_data).map { UInt32(truncatingIfNeeded: $0) })
        case .uint64: return le(buffer(t.uint64_data, t.n_uint64_data))
        case .string, .complex64, .complex128:
            throw ModelError.unsupportedTensorType(path: path, tensor: name, type: dtype.description)
        }
    }

    /// Reads a tensor's bytes from the external data file its `external_data` entries name.
    func external(_ t: Onnx__TensorProto, name: String, byteCount: Int) throws -> [UInt8] {
        var location = "", offset = 0, length: Int? = nil
        for i in 0..<t.n_external_data {
            guard let e = t.external_data[i] else { continue }
            let v = string(e.pointee.value)
            switch string(e.pointee.key) {
            case "location": location = v
            case "offset": offset = Int(v) ?? -1
            case "length": length = Int(v) ?? -1
            default: break
            }
        }
        guard let dir = baseDirectory else {
            throw ModelError.invalid(path: path, what: "tensor '\(name)' uses external data, which needs a model file")
        }
        let parts = location.split(separator: "/")
        guard !location.isEmpty, !location.hasPrefix("/"), !parts.contains(".."), offset >= 0, (length ?? byteCount) >= 0 else {
            throw ModelError.invalid(path: path, what: "tensor '\(name)': bad external data reference (location '\(location)', offset \(offset))")
        }
        let length_ = length ?? byteCount
        if length_ != byteCount {
            throw ModelError.invalid(path: path, what: "tensor '\(name)': external data length \(length_) does not match its shape (\(byteCount) bytes)")
        }
        let file = PathNames.join(dir, location)
        let handle: FileHandle
        if let h = externalFiles[file] {
            handle = h
        } else {
            // The file must be a regular file inside the model's folder once links are resolved: a link to
            // /etc/passwd must not be read (and copied into an output), a FIFO or device must not hang the read.
            var st = stat()
            guard stat(file, &st) == 0 else {
                throw ModelError.invalid(path: path, what: "tensor '\(name)': external data file '\(file)' cannot be opened: \(String(cString: strerror(errno)))")
            }
            guard (st.st_mode & S_IFMT) == S_IFREG else {
                throw ModelError.invalid(path: path, what: "tensor '\(name)': external data file '\(file)' is not a regular file")
            }
            guard let real = Self.realPath(file), let realDir = Self.realPath(dir), real.hasPrefix(realDir == "/" ? "/" : realDir + "/") else {
                throw ModelError.invalid(path: path, what: "tensor '\(name)': external data file '\(file)' lies outside the model's folder (through a link)")
            }
            guard let h = FileHandle(forReadingAtPath: file) else {
                throw ModelError.invalid(path: path, what: "tensor '\(name)': external data file '\(file)' cannot be opened")
            }
            onExternalFile?(file)
            externalFiles[file] = h
            handle = h
        }
        do {
            try handle.seek(toOffset: UInt64(offset))
            let data = try handle.read(upToCount: length_) ?? Data()
            guard data.count == length_ else {
                throw ModelError.invalid(path: path, what: "tensor '\(name)': external data file '\(file)' ends before offset \(offset) + \(length_)")
            }
            return [UInt8](data)
        } catch let e as ModelError {
            throw e
        } catch {
            throw ModelError.unreadable(path: file, reason: "\(error)")
        }
    }

    static func realPath(_ p: String) -> String? {
        guard let r = realpath(p, nil) else { return nil }
        defer { free(r) }
        return String(cString: r)
    }

    func string(_ p: UnsafeMutablePointer<CChar>?) -> String { p.map { String(cString: $0) } ?? "" }

    func strings(_ p: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, _ n: Int) -> [String] {
        guard let p else { return [] }
        return (0..<n).map { string(p[$0]) }
    }

    func bytesString(_ b: ProtobufCBinaryData) -> String {
        b.len == 0 ? "" : String(decoding: UnsafeBufferPointer(start: b.data, count: b.len), as: UTF8.self)
    }

    func pack<T>(_ message: UnsafeMutablePointer<T>) -> [UInt8] {
        var n = 0
        guard let buf = swiftq_pack_to_malloc(swiftq_message(message), &n) else { return [] }
        defer { free(buf) }
        return Array(UnsafeBufferPointer(start: buf, count: n))
    }
}
