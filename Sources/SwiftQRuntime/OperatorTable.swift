/// Builds an operator for one node.
public typealias OperatorFactory = @Sendable (OperatorSetup) throws -> Operator

/// Every operator the float runtime runs, by ONNX op type (default domain).
public let operatorTable: [String: OperatorFactory] = [
    "Conv": ConvOp.init, "ConvTranspose": ConvTransposeOp.init, "BatchNormalization": BatchNormOp.init,
    "Relu": UnaryOp.init, "LeakyRelu": UnaryOp.init, "Clip": UnaryOp.init, "Sigmoid": UnaryOp.init,
    "HardSigmoid": UnaryOp.init, "HardSwish": UnaryOp.init, "Tanh": UnaryOp.init,
    "PRelu": BinaryOp.init, "Add": BinaryOp.init, "Sub": BinaryOp.init, "Mul": BinaryOp.init, "Div": BinaryOp.init,
    "Sum": VariadicOp.init, "Max": VariadicOp.init, "Min": VariadicOp.init, "Mean": VariadicOp.init,
    "Exp": UnaryOp.init, "Log": UnaryOp.init, "Sqrt": UnaryOp.init, "Reciprocal": UnaryOp.init, "Neg": UnaryOp.init,
    "Abs": UnaryOp.init, "Floor": UnaryOp.init, "Ceil": UnaryOp.init, "Round": UnaryOp.init, "Sign": UnaryOp.init,
    "Erf": UnaryOp.init, "Gelu": UnaryOp.init, "Softplus": UnaryOp.init, "Softsign": UnaryOp.init, "Mish": UnaryOp.init,
    "Elu": UnaryOp.init, "Selu": UnaryOp.init, "Celu": UnaryOp.init, "ThresholdedRelu": UnaryOp.init,
    "Pow": CompareOp.init, "Equal": CompareOp.init, "Less": CompareOp.init, "Greater": CompareOp.init,
    "LessOrEqual": CompareOp.init, "GreaterOrEqual": CompareOp.init, "And": CompareOp.init, "Or": CompareOp.init,
    "Xor": CompareOp.init, "Not": CompareOp.init, "Where": WhereOp.init,
    "MaxPool": PoolOp.init, "AveragePool": PoolOp.init, "GlobalAveragePool": GlobalPoolOp.init, "GlobalMaxPool": GlobalPoolOp.init,
    "Gemm": GemmOp.init, "MatMul": MatMulOp.init, "Softmax": SoftmaxOp.init, "LogSoftmax": SoftmaxOp.init, "Hardmax": SoftmaxOp.init, "LRN": LRNOp.init,
    "ReduceMean": ReduceOp.init, "ReduceSum": ReduceOp.init, "ReduceMax": ReduceOp.init, "ReduceMin": ReduceOp.init,
    "ReduceProd": ReduceOp.init, "ReduceSumSquare": ReduceOp.init, "ReduceL1": ReduceOp.init, "ReduceL2": ReduceOp.init,
    "ReduceLogSum": ReduceOp.init, "ReduceLogSumExp": ReduceOp.init,
    "ArgMax": ArgExtremeOp.init, "ArgMin": ArgExtremeOp.init, "TopK": TopKOp.init,
    "LayerNormalization": NormalizationOp.init, "InstanceNormalization": NormalizationOp.init, "GroupNormalization": NormalizationOp.init,
    "Resize": ResizeOp.init, "Upsample": ResizeOp.init, "Expand": ExpandTileOp.init, "Tile": ExpandTileOp.init, "Range": RangeOp.init,
    "DepthToSpace": DepthSpaceOp.init, "SpaceToDepth": DepthSpaceOp.init,
    "Concat": ConcatOp.init, "Split": SplitOp.init, "Slice": SliceOp.init, "Transpose": TransposeOp.init, "Gather": GatherOp.init,
    "Flatten": ViewOp.init, "Reshape": ViewOp.init, "Squeeze": ViewOp.init, "Unsqueeze": ViewOp.init,
    "Identity": ViewOp.init, "Dropout": ViewOp.init,
    "Shape": ShapeOp.init, "ConstantOfShape": ShapeOp.init, "Cast": CastOp.init, "Pad": PadOp.init,
    "QuantizeLinear": QuantizeLinearOp.init, "DequantizeLinear": QuantizeLinearOp.init,
    "ConvInteger": IntegerOp.init, "MatMulInteger": IntegerOp.init, "QLinearConv": IntegerOp.init, "QLinearMatMul": IntegerOp.init,
]
