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


# Why some primitives have no ONNX form, where there is more to say than that.
_NO_FORM = {
    "argpartition": "numpy leaves the order within each part unspecified, so no ONNX operator reproduces "
                    "Avalon's indices (use argsort or topk, which do)",
    "randint": "ONNX draws random floats only (RandomUniform, RandomNormal), no integers",
    "randperm": "ONNX draws random floats only (RandomUniform, RandomNormal), no permutations",
    "multinomial": "ONNX's Multinomial draws with replacement from unnormalised log-probabilities only, and "
                   "its numbers differ from Avalon's draws",
    "host_callback": "it calls back into Python, which an ONNX runtime cannot do",
    "all_reduce_sum": "a collective across processes, which an ONNX graph cannot hold",
    "broadcast_from": "a collective across processes, which an ONNX graph cannot hold",
}


def refusal(node, opset):
    """Why `node` cannot be exported at `opset`, or None when it can."""
    name = node.prim.name
    if name not in EMITTERS:
        return _NO_FORM.get(name, "no ONNX form")
    check = REFUSALS.get(name)
    return check(node, opset) if check is not None else None


from . import elementwise, index, loss, nn, random, recurrent, reduce, shape  # noqa: E402,F401 - they register emitters
