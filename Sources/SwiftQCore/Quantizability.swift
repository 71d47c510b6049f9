/// How a node takes part in int8 quantization.
public enum QuantizationRole: String, Sendable, CaseIterable {
    /// A compute op with a constant weight: int8 weights, int8 activations, int32 accumulation.
    case weighted
    /// Runs on int8 activations without weights (residual Add, Concat, pooling, layout moves, fused activations).
    case activation
    /// Stays in float.
    case float
}

/// Op type → role when its inputs allow it. `weighted` ops fall back to `float` when the weight is not constant.
public let quantizationRoles: [String: QuantizationRole] = [
    "Conv": .weighted, "ConvTranspose": .weighted, "Gemm": .weighted, "MatMul": .weighted,
    "Add": .activation, "Mul": .activation, "Concat": .activation, "MaxPool": .activation, "AveragePool": .activation,
    "GlobalAveragePool": .activation, "Relu": .activation, "Clip": .activation, "LeakyRelu": .activation,
    "Sigmoid": .activation, "HardSigmoid": .activation, "HardSwish": .activation,
    "Reshape": .activation, "Flatten": .activation, "Transpose": .activation, "Squeeze": .activation,
    "Unsqueeze": .activation, "Split": .activation, "Slice": .activation, "Pad": .activation, "Resize": .activation,
]

extension Node {
    /// The role of this node given which values are constants (initializers or Constant outputs) and the
    /// inferred element type of its first input (integer tensors, such as shape arithmetic, stay as they are).
    public func quantizationRole(constants: Set<String>, inputType: DType? = nil) -> QuantizationRole {
        guard isDefaultDomain, let role = quantizationRoles[opType] else { return .float }
        if let t = inputType, !t.isFloatingPoint { return .float }
        if role == .weighted {
            guard let w = input(1), constants.contains(w) else { return .float }
        }
        return role
    }
}
