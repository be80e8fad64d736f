"""Random draws (training-mode dropout's keep mask): RandomUniformLike / RandomNormalLike over an
array of the drawn shape, which follows the dynamic axes. onnxruntime draws its own numbers, so an
exported training-mode model agrees with Avalon in distribution, not value by value."""
import numpy as np

from . import emits


@emits("uniform", "normal")
def draw(g, node):
    twin = g.twin(node)
    shape = g.shape_tensor(node.shape, twin and twin.shape, fill=None)
    zero = g.onnx.numpy_helper.from_array(np.zeros(1, node.dtype))
    like = g.op("ConstantOfShape", [shape], value=zero)
    op_type = "RandomUniformLike" if node.prim.name == "uniform" else "RandomNormalLike"
    return g.op(op_type, [like])
