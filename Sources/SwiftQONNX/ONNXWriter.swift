import COnnx
import Foundation
import SwiftQCore

/// Where tensor bytes go when a model is written.
public enum ExternalDataPolicy: Sendable {
    /// Inline unless the tensors add up to more than protobuf's 2 GiB limit allows (then as `.always`).
    case auto
    /// Every tensor of at least 1 KiB goes to `<model file>.data` beside the model.
    case always
    /// Always inline; a model over 2 GiB is then an error.
    case never
}

/// Writes the IR as an ONNX file, atomically: to a temporary file in the same folder, then renamed.
public enum ONNXWriter {
    /// Tensor bytes above which `.auto` moves data out of the protobuf (protobuf's hard limit is 2 GiB).
    public static let autoExternalLimit = 1_800_000_000
    static let externalMinimumBytes = 1024
    static let externalAlignment = 4096

    /// Writes `model` to `path` (and its tensors to `path`.data when external). With `outputs`, the files are
    /// reserved in that transaction and appear when the caller commits it; without, they are committed here.
    public static func write(_ model: Model, to path: String, externalData: ExternalDataPolicy = .auto,
                             outputs: OutputFiles? = nil, role: String = "output") throws {
        let totalBytes = model.graph.initializers.reduce(0) { $0 + $1.tensor.bytes.count }
        let useExternal: Bool
        switch externalData {
        case .always: useExternal = true
        case .never:
            if totalBytes > autoExternalLimit {
                throw ModelError.writeFailed(path: path, reason: "\(totalBytes) bytes of tensors do not fit in one protobuf; write with external data")
            }
            useExternal = false
        case .auto: useExternal = totalBytes > autoExternalLimit
        }
        let files = outputs ?? OutputFiles()
        let dataName = PathNames.name(of: path) + ".data"
        let dataPath = PathNames.join(PathNames.folder(of: path), dataName)
        let dataTmp = useExternal ? try files.reserve(dataPath, role: "external data file") : nil
        let tmp = try files.reserve(path, role: role)
        var sink: ExternalSink? = nil
        if let dataTmp {
            sink = try ExternalSink(path: dataTmp, location: dataName)
        }
        let arena = CArena()
        let proto = try ProtoBuilder(arena: arena, sink: sink).model(model)
        if let sink { try sink.finish() }
        let fd = open(tmp, O_WRONLY | O_TRUNC | O_CLOEXEC)
        guard fd >= 0 else { throw ModelError.writeFailed(path: path, reason: String(cString: strerror(errno))) }
        var err = swiftq_pack_to_fd(swiftq_message(proto), fd)
        if err == 0 && fsync(fd) != 0 { err = errno }
        close(fd)
        if err != 0 { throw ModelError.writeFailed(path: path, reason: String(cString: strerror(err))) }
        if outputs == nil { try files.commit() }
    }

    /// The serialized ModelProto, all tensors inline.
    public static func serialize(_ model: Model) throws -> [UInt8] {
        let arena = CArena()
        let proto = try ProtoBuilder(arena: arena, sink: nil).model(model)
        var n = 0
        guard let buf = swiftq_pack_to_malloc(swiftq_message(proto), &n) else {
            throw ModelError.writeFailed(path: "<memory>", reason: "out of memory")
        }
        defer { free(buf) }
        return Array(UnsafeBufferPointer(start: buf, count: n))
    }
}

/// Appends tensor bytes to the external data file, each at an aligned offset.
final class ExternalSink {
    let handle: FileHandle
    let path: String
    let location: String
    var offset = 0

    init(path: String, location: String) throws {
        guard let h = FileHandle(forWritingAtPath: path) else {
            throw ModelError.writeFailed(path: path, reason: "cannot create the external data file")
        }
        self.handle = h
        self.path = path
        self.location = location
    }

    deinit { try? handle.close() }

    /// Writes `bytes`, returning the offset they start at.
    func append(_ bytes: [UInt8]) throws -> Int {
        let pad = (ONNXWriter.externalAlignment - offset % ONNXWriter.externalAlignment) % ONNXWriter.externalAlignment
        do {
            if pad > 0 { try handle.write(contentsOf: Data(count: pad)) }
            try handle.write(contentsOf: bytes)
        } catch {
            throw ModelError.writeFailed(path: path, reason: "\(error)")
        }
        offset += pad
        let start = offset
        offset += bytes.count
        return start
    }

    func finish() throws {
        do { try handle.synchronize() } catch { throw ModelError.writeFailed(path: path, reason: "\(error)") }
    }
}

/// Builds the protobuf-c message tree for a model; all memory belongs to `arena`.
private struct ProtoBuilder {
    let arena: CArena
    let sink: ExternalSink?

    func model(_ m: Model) throws -> UnsafeMutablePointer<Onnx__ModelProto> {
        let p: UnsafeMutablePointer<Onnx__ModelProto> = arena.make { onnx__model_proto__init($0) }
        p.pointee.has_ir_version = 1
        p.pointee.ir_version = m.irVersion
        let opsets = m.opsetImports.map { o -> UnsafeMutablePointer<Onnx__OperatorSetIdProto>? in
            let q: UnsafeMutablePointer<Onnx__OperatorSetIdProto> = arena.make { onnx__operator_set_id_proto__init($0) }
            q.pointee.domain = arena.cStringAlways(o.domain)
            q.pointee.has_version = 1
            q.pointee.version = o.version
            return q
        }
        p.pointee.n_opset_import = opsets.count
        p.pointee.opset_import = arena.array(opsets)
        p.pointee.producer_name = arena.cString(m.producerName)
        p.pointee.producer_version = arena.cString(m.producerVersion)
        p.pointee.domain = arena.cString(m.domain)
        if m.modelVersion != 0 {
            p.pointee.has_model_version = 1
            p.pointee.model_version = m.modelVersion
        }
        p.pointee.doc_string = arena.cString(m.docString)
        let meta = m.metadataProps.map { kv -> UnsafeMutablePointer<Onnx__StringStringEntryProto>? in
            entry(kv.key, kv.value)
        }
        p.pointee.n_metadata_props = meta.count
        p.pointee.metadata_props = arena.array(meta)
        p.pointee.graph = try graph(m.graph)
        let functions = m.packedFunctions.map {
            arena.unpack($0, { onnx__function_proto__unpack(nil, $0, $1) }, free: { onnx__function_proto__free_unpacked($0, nil) })
        }
        p.pointee.n_functions = functions.count
        p.pointee.functions = arena.array(functions)
        let training = m.packedTrainingInfo.map {
            arena.unpack($0, { onnx__training_info_proto__unpack(nil, $0, $1) }, free: { onnx__training_info_proto__free_unpacked($0, nil) })
        }
        p.pointee.n_training_info = training.count
        p.pointee.training_info = arena.array(training)
        return p
    }

    func entry(_ key: String, _ value: String) -> UnsafeMutablePointer<Onnx__StringStringEntryProto> {
        let q: UnsafeMutablePointer<Onnx__StringStringEntryProto> = arena.make { onnx__string_string_entry_proto__init($0) }
        q.pointee.key = arena.cStringAlways(key)
        q.pointee.value = arena.cStringAlways(value)
        return q
    }

    func graph(_ g: Graph) throws -> UnsafeMutablePointer<Onnx__GraphProto> {
        let p: UnsafeMutablePointer<Onnx__GraphProto> = arena.make { onnx__graph_proto__init($0) }
        let nodes = try g.nodes.map { Optional(try node($0)) }
        p.pointee.n_node = nodes.count
        p.pointee.node = arena.array(nodes)
        p.pointee.name = arena.cString(g.name)
        let inits = try g.initializers.map { Optional(try tensor($0.tensor, name: $0.name, docString: $0.docString, allowExternal: true)) }
        p.pointee.n_initializer = inits.count
        p.pointee.initializer = arena.array(inits)
        p.pointee.doc_string = arena.cString(g.docString)
        let ins = g.inputs.map { Optional(valueInfo($0)) }
        p.pointee.n_input = ins.count
        p.pointee.input = arena.array(ins)
        let outs = g.outputs.map { Optional(valueInfo($0)) }
        p.pointee.n_output = outs.count
        p.pointee.output = arena.array(outs)
        let vis = g.valueInfo.map { Optional(valueInfo($0)) }
        p.pointee.n_value_info = vis.count
        p.pointee.value_info = arena.array(vis)
        return p
    }

    func node(_ n: Node) throws -> UnsafeMutablePointer<Onnx__NodeProto> {
        let p: UnsafeMutablePointer<Onnx__NodeProto> = arena.make { onnx__node_proto__init($0) }
        p.pointee.n_input = n.inputs.count
        p.pointee.input = arena.array(n.inputs.map { arena.cStringAlways($0) })
        p.pointee.n_output = n.outputs.count
        p.pointee.output = arena.array(n.outputs.map { arena.cStringAlways($0) })
        p.pointee.name = arena.cString(n.name)
        p.pointee.op_type = arena.cStringAlways(n.opType)
        p.pointee.domain = arena.cString(n.domain)
        let attrs = try n.attributes.map { Optional(try attribute($0)) }
        p.pointee.n_attribute = attrs.count
        p.pointee.attribute = arena.array(attrs)
        p.pointee.doc_string = arena.cString(n.docString)
        return p
    }

    func attribute(_ a: Attribute) throws -> UnsafeMutablePointer<Onnx__AttributeProto> {
        if case .opaque(let packed) = a.value,
           let p = arena.unpack(packed, { onnx__attribute_proto__unpack(nil, $0, $1) }, free: { onnx__attribute_proto__free_unpacked($0, nil) }) {
            return p
        }
        let p: UnsafeMutablePointer<Onnx__AttributeProto> = arena.make { onnx__attribute_proto__init($0) }
        p.pointee.name = arena.cStringAlways(a.name)
        p.pointee.ref_attr_name = arena.cString(a.refAttrName)
        p.pointee.doc_string = arena.cString(a.docString)
        p.pointee.has_type = 1
        switch a.value {
        case .float(let f):
            p.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT
            p.pointee.has_f = 1
            p.pointee.f = f
        case .int(let i):
            p.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT
            p.pointee.has_i = 1
            p.pointee.i = i
        case .string(let s):
            p.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING
            p.pointee.has_s = 1
            p.pointee.s = arena.binary(Array(s.utf8))
        case .tensor(let t):
            p.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR
            p.pointee.t = try tensor(t, name: "", docString: "", allowExternal: false)
        case .graph(let g):
            p.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH
            p.pointee.g = try graph(g)
        case .floats(let v):
            p.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS
            p.pointee.n_floats = v.count
            p.pointee.floats = arena.array(v)
        case .ints(let v):
            p.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS
            p.pointee.n_ints = v.count
            p.pointee.ints = arena.array(v)
        case .strings(let v):
            p.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS
            p.pointee.n_strings = v.count
            p.pointee.strings = arena.array(v.map { arena.binary(Array($0.utf8)) })
        case .tensors(let v):
            p.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSORS
            p.pointee.n_tensors = v.count
            p.pointee.tensors = arena.array(try v.map { Optional(try tensor($0, name: "", docString: "", allowExternal: false)) })
        case .graphs(let v):
            p.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPHS
            p.pointee.n_graphs = v.count
            p.pointee.graphs = arena.array(try v.map { Optional(try graph($0)) })
        case .opaque:
            throw ModelError.writeFailed(path: "<model>", reason: "attribute '\(a.name)' holds bytes that are not a packed AttributeProto")
        }
        return p
    }

    func valueInfo(_ v: ValueInfo) -> UnsafeMutablePointer<Onnx__ValueInfoProto> {
        let p: UnsafeMutablePointer<Onnx__ValueInfoProto> = arena.make { onnx__value_info_proto__init($0) }
        p.pointee.name = arena.cStringAlways(v.name)
        p.pointee.doc_string = arena.cString(v.docString)
        switch v.type {
        case nil: break
        case .opaque(let packed)?:
            p.pointee.type = arena.unpack(packed, { onnx__type_proto__unpack(nil, $0, $1) }, free: { onnx__type_proto__free_unpacked($0, nil) })
        case .tensor(let elem, let shape)?:
            let tp: UnsafeMutablePointer<Onnx__TypeProto> = arena.make { onnx__type_proto__init($0) }
            let tt: UnsafeMutablePointer<Onnx__TypeProto__Tensor> = arena.make { onnx__type_proto__tensor__init($0) }
            if elem != 0 {
                tt.pointee.has_elem_type = 1
                tt.pointee.elem_type = elem
            }
            if let shape {
                let sp: UnsafeMutablePointer<Onnx__TensorShapeProto> = arena.make { onnx__tensor_shape_proto__init($0) }
                let dims = shape.map { d -> UnsafeMutablePointer<Onnx__TensorShapeProto__Dimension>? in
                    let dp: UnsafeMutablePointer<Onnx__TensorShapeProto__Dimension> = arena.make { onnx__tensor_shape_proto__dimension__init($0) }
                    switch d {
                    case .value(let v):
                        dp.pointee.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE
                        dp.pointee.dim_value = Int64(v)
                    case .symbol(let s):
                        dp.pointee.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM
                        dp.pointee.dim_param = arena.cStringAlways(s)
                    case .unknown: break
                    }
                    return dp
                }
                sp.pointee.n_dim = dims.count
                sp.pointee.dim = arena.array(dims)
                tt.pointee.shape = sp
            }
            tp.pointee.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE
            tp.pointee.tensor_type = tt
            p.pointee.type = tp
        }
        return p
    }

    func tensor(_ t: Tensor, name: String, docString: String, allowExternal: Bool) throws -> UnsafeMutablePointer<Onnx__TensorProto> {
        let p: UnsafeMutablePointer<Onnx__TensorProto> = arena.make { onnx__tensor_proto__init($0) }
        p.pointee.n_dims = t.shape.count
        p.pointee.dims = arena.array(t.shape.map { Int64($0) })
        p.pointee.has_data_type = 1
        p.pointee.data_type = t.dtype.rawValue
        p.pointee.name = arena.cString(name)
        p.pointee.doc_string = arena.cString(docString)
        let stored = t.dtype.isNibble ? Nibbles.pack(t.bytes) : t.bytes
        if allowExternal, let sink, stored.count >= ONNXWriter.externalMinimumBytes {
            let offset = try sink.append(stored)
            let entries: [UnsafeMutablePointer<Onnx__StringStringEntryProto>?] = [
                entry("location", sink.location), entry("offset", String(offset)), entry("length", String(stored.count)),
            ]
            p.pointee.n_external_data = entries.count
            p.pointee.external_data = arena.array(entries)
            p.pointee.has_data_location = 1
            p.pointee.data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL
        } else {
            p.pointee.has_raw_data = 1
            p.pointee.raw_data = arena.binary(stored)
        }
        return p
    }
}
