/// Builds an operator for one node.
public typealias OperatorFactory = @Sendable (OperatorSetup) throws -> Operator

/// Every operator the float runtime runs, by ONNX op type (default domain).
public let operatorTable: [String: OperatorFactory] = [
    "Conv": ConvOp.init, "ConvTranspose": ConvTransposeOp.init, "BatchNormalization": BatchNormOp.init,
    "Relu": UnaryOp.init, "LeakyRelu": UnaryOp.init, "Clip": UnaryOp.init, "Sigmoid": UnaryOp.init,
    "HardSigmoid": UnaryOp.init, "HardSwish": UnaryOp.init, "Tanh": UnaryOp.init,
    "PRelu": BinaryOp.init, "Add": BinaryOp.init, "Sub": BinaryOp.init, "Mul": BinaryOp.init, "Div": BinaryOp.init,
    "Sum": SumOp.init,
    "MaxPool": PoolOp.init, "AveragePool": PoolOp.init, "GlobalAveragePool": GlobalPoolOp.init, "GlobalMaxPool": GlobalPoolOp.init,
    "Gemm": GemmOp.init, "MatMul": MatMulOp.init, "Softmax": SoftmaxOp.init, "LRN": LRNOp.init, "ReduceMean": ReduceMeanOp.init,
    "Concat": ConcatOp.init, "Split": SplitOp.init, "Slice": SliceOp.init, "Transpose": TransposeOp.init, "Gather": GatherOp.init,
    "Flatten": ViewOp.init, "Reshape": ViewOp.init, "Squeeze": ViewOp.init, "Unsqueeze": ViewOp.init,
    "Identity": ViewOp.init, "Dropout": ViewOp.init,
    "Shape": ShapeOp.init, "ConstantOfShape": ShapeOp.init, "Cast": CastOp.init, "Pad": PadOp.init,
    "QuantizeLinear": QuantizeLinearOp.init, "DequantizeLinear": QuantizeLinearOp.init,
    "ConvInteger": IntegerOp.init, "MatMulInteger": IntegerOp.init, "QLinearConv": IntegerOp.init, "QLinearMatMul": IntegerOp.init,
]
