"""Runs a Python script (the first argument, with the arguments after it) with every ONNX Runtime session's graph
optimizations off, so that a Q/DQ model runs as written (DequantizeLinear, the float operator, QuantizeLinear)
instead of through ONNX Runtime's fused int8 kernels. check_shared.py runs ../shared/anchors/ort_eval.py this way on
CPUs without VNNI, where those kernels saturate (shared_path.ort_int8_is_exact); the anchor itself is not changed.
usage: ort_unoptimized.py SCRIPT [ARGS...]"""
import runpy, sys
import onnxruntime as ort

_Session = ort.InferenceSession


class UnoptimizedSession(_Session):
    def __init__(self, path, sess_options=None, *args, **kwargs):
        so = sess_options or ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        super().__init__(path, so, *args, **kwargs)


ort.InferenceSession = UnoptimizedSession
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name='__main__')
