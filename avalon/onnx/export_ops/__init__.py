"""How each Avalon primitive becomes ONNX nodes: `EMITTERS` maps a primitive's name to a function
`emit(g, node) -> ONNX name of its value`, g being the `GraphBuilder` (export_graph.py).

`emits("name", …)` registers one; `refuse(node, opset)` may say, for a node whose parameters have no ONNX
form (an average pooling with a divisor that is not an integer), why it cannot be exported.
"""
EMITTERS = {}
REFUSALS = {}  # primitive name -> fn(node, opset) -> why it cannot be exported, or None


def emits(*names, refuse=None):
    def register(fn):
        for name in names:
            EMITTERS[name] = fn
            if refuse is not None:
                REFUSALS[name] = refuse
        return fn
    return register


def refusal(node, opset):
    """Why `node` cannot be exported at `opset`, or None when it can."""
    name = node.prim.name
    if name not in EMITTERS:
        return "no ONNX form"
    check = REFUSALS.get(name)
    return check(node, opset) if check is not None else None


from . import elementwise, index, loss, nn, random, recurrent, reduce, shape  # noqa: E402,F401 - they register their emitters
