/// The sizes of one 2-D convolution or pooling window, all resolved (pads explicit, NCHW).
public struct ConvGeometry: Sendable, Equatable {
    public var batch: Int, channels: Int, height: Int, width: Int
    /// Output channels (convolution) or `channels` (pooling).
    public var outChannels: Int
    public var group: Int
    public var kernelH: Int, kernelW: Int
    public var strideH: Int, strideW: Int
    public var dilationH: Int, dilationW: Int
    public var padTop: Int, padLeft: Int, padBottom: Int, padRight: Int
    public var outHeight: Int, outWidth: Int

    public init(batch: Int, channels: Int, height: Int, width: Int, outChannels: Int, group: Int,
                kernelH: Int, kernelW: Int, strideH: Int, strideW: Int, dilationH: Int, dilationW: Int,
                padTop: Int, padLeft: Int, padBottom: Int, padRight: Int, outHeight: Int, outWidth: Int) {
        self.batch = batch; self.channels = channels; self.height = height; self.width = width
        self.outChannels = outChannels; self.group = group; self.kernelH = kernelH; self.kernelW = kernelW
        self.strideH = strideH; self.strideW = strideW; self.dilationH = dilationH; self.dilationW = dilationW
        self.padTop = padTop; self.padLeft = padLeft; self.padBottom = padBottom; self.padRight = padRight
        self.outHeight = outHeight; self.outWidth = outWidth
    }

    public var isDepthwise: Bool { group == channels && outChannels == channels && group > 1 }
    public var isPointwise: Bool {
        kernelH == 1 && kernelW == 1 && strideH == 1 && strideW == 1 && padTop == 0 && padLeft == 0 && padBottom == 0 && padRight == 0
    }

    /// Calls `body(xIndex, wIndex)` for every tap of output (n, m, oh, ow) that lies inside the image: the
    /// flat indices into x (N×C×H×W) and w (M×C/group×KH×KW). The reference kernels' one definition of a window.
    @inline(__always)
    public func forEachTap(n: Int, m: Int, oh: Int, ow: Int, _ body: (Int, Int) -> Void) {
        let cpg = channels / group, grp = m / (outChannels / group)
        for c in 0..<cpg {
            let ci = grp * cpg + c
            for kh in 0..<kernelH {
                let ih = oh * strideH - padTop + kh * dilationH
                if ih < 0 || ih >= height { continue }
                for kw in 0..<kernelW {
                    let iw = ow * strideW - padLeft + kw * dilationW
                    if iw < 0 || iw >= width { continue }
                    body(((n * channels + ci) * height + ih) * width + iw, ((m * cpg + c) * kernelH + kh) * kernelW + kw)
                }
            }
        }
    }
}
