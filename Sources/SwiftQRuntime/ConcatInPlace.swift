import SwiftQCore

/// Concats assembled where they lie: a Concat along the channels of 2-D maps whose every input is the output of a
/// Conv step that nothing else reads (SqueezeNet's fire modules; Inception's and a detector neck's branches that end
/// in a convolution). At batch 1 a channel slice of the concatenation is one dense run of memory, so each of those
/// Convs writes its output straight into its slice and the Concat copies nothing (SqueezeNet, 2 threads: the eight
/// Concats took 0.10 ms of 2.0).
///
/// A run with an observer (it sees every Conv output as a tensor of its own), a batch above 1 or maps of different
/// sizes takes the ordinary steps: the slices written so far are first copied out into tensors of their own, so the
/// values, and the Concat's errors, are those of the steps one after the other.
struct ConcatPlan {
    struct Part {
        let concat: Int
        /// The first channel of this input in the concatenation.
        let channelOffset: Int
    }
    /// Producer step → its place in a concatenation.
    let parts: [Int: Part]
    /// Concat step → the concatenation's channels and its producer steps in input order.
    let concats: [Int: (channels: Int, producers: [Int])]

    static let none = ConcatPlan(parts: [:], concats: [:])

    private init(parts: [Int: Part], concats: [Int: (channels: Int, producers: [Int])]) {
        self.parts = parts
        self.concats = concats
    }

    init(_ steps: [Interpreter.Step], useCounts: [Int]) {
        var producer: [Int: Int] = [:]
        for (i, s) in steps.enumerated() { for o in s.outputs where o >= 0 { producer[o] = i } }
        var parts: [Int: Part] = [:], concats: [Int: (channels: Int, producers: [Int])] = [:]
        for (c, s) in steps.enumerated() {
            guard let concat = s.op as? ConcatOp, concat.axis == 1 || concat.axis == -3, s.inputs.count > 1 else { continue }
            var offsets: [Int] = [], producers: [Int] = [], channels = 0
            for i in s.inputs {
                // Read once (by this Concat, not twice by it, not a graph output), made by a float Conv of 2-D maps with
                // constant weights, alone among its step's outputs.
                guard i >= 0, useCounts[i] == 1, let p = producer[i], steps[p].outputs == [i], let conv = steps[p].op as? ConvOp,
                      let w = conv.weight, w.dtype == .float, w.rank == 4 else { break }
                offsets.append(channels)
                producers.append(p)
                channels += w.shape[0]
            }
            guard producers.count == s.inputs.count else { continue }
            for (k, p) in producers.enumerated() { parts[p] = Part(concat: c, channelOffset: offsets[k]) }
            concats[c] = (channels, producers)
        }
        self.parts = parts
        self.concats = concats
    }

    var isEmpty: Bool { parts.isEmpty }
}

/// One run's concatenations in assembly (`ConcatPlan`).
struct ConcatAssembly {
    let plan: ConcatPlan
    /// Concat step → its output, filled slice by slice.
    private var buffers: [Int: RTensor] = [:]
    /// Concats that this run takes as ordinary steps.
    private var ordinary: Set<Int> = []
    /// Producer steps that wrote into a buffer.
    private var written: Set<Int> = []

    init(_ plan: ConcatPlan) { self.plan = plan }

    /// Runs step `index`, when it is one of the plan's producers, into its slice of the concatenation. Returns the
    /// shape of its output (profiling), or nil when the step is to run as an ordinary step (a producer's `values` then
    /// holds every slice written so far as a tensor of its own).
    mutating func write(step index: Int, _ steps: [Interpreter.Step], _ ins: [RTensor?], _ ctx: ExecutionContext,
                        values: inout [RTensor?]) throws -> [Int]? {
        guard let part = plan.parts[index], let conv = steps[index].op as? ConvOp, !ordinary.contains(part.concat) else { return nil }
        let p = try conv.prepare(ins)
        let g = p.g, plane = g.outHeight * g.outWidth
        guard p.x.rank == 4, g.batch == 1 else { return giveUp(part.concat, steps, &values, ctx) }
        let buffer: RTensor
        if let b = buffers[part.concat] {
            guard b.shape[2] == g.outHeight, b.shape[3] == g.outWidth else { return giveUp(part.concat, steps, &values, ctx) }
            buffer = b
        } else {
            buffer = ctx.alloc(.float, [1, plan.concats[part.concat]!.channels, g.outHeight, g.outWidth])
            buffers[part.concat] = buffer
        }
        conv.compute(p, into: buffer.f + part.channelOffset * plane, ctx)
        written.insert(index)
        return [1, g.outChannels, g.outHeight, g.outWidth]
    }

    /// The concatenation of Concat step `index` when every slice has been written in place.
    mutating func finished(step index: Int) -> RTensor? {
        buffers.removeValue(forKey: index)
    }

    /// Copies the slices of concat `c` written so far out into their producers' values; `c` runs as an ordinary step.
    private mutating func giveUp(_ c: Int, _ steps: [Interpreter.Step], _ values: inout [RTensor?], _ ctx: ExecutionContext) -> [Int]? {
        ordinary.insert(c)
        guard let b = buffers.removeValue(forKey: c), let producers = plan.concats[c]?.producers else { return nil }
        let plane = b.shape[2] * b.shape[3]
        for p in producers where written.contains(p) {
            guard let w = (steps[p].op as? ConvOp)?.weight, let offset = plan.parts[p]?.channelOffset else { continue }
            let t = ctx.alloc(.float, [1, w.shape[0], b.shape[2], b.shape[3]])
            t.f.update(from: b.f + offset * plane, count: t.count)
            values[steps[p].outputs[0]] = t
        }
        return nil
    }
}
