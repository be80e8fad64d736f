"""Batch norm fused with the ReLU after it: the `fuse_batch_norm_relu` pass.

    relu(batch_norm_apply(x, stats, w, b))          -> batch_norm_relu(x, stats, w, b, None)
    relu(batch_norm_apply(x, stats, w, b) + skip)   -> batch_norm_relu(x, stats, w, b, skip)   (a residual block)

when nothing else reads the normalised values or the sum. The fused call (ops/batch_norm.py) writes the
normalised values into the ReLU's own buffer and rectifies them there: one result of the full size
instead of two, and no separate pass reading one back. PyTorch's eager mode cannot do this; a tape can.
Like the elementwise fusion (fuse.py), it is made for compiled replays only: a tape that is
differentiated never sees it. `FUSE_BATCH_NORM_RELU = False` switches it off for tapes compiled after.
"""
from ..ops import batch_norm as bn
from ..ops import elementwise as ew
from ..tape import Call

# ResNet-ish step (bench/bn_relu_ab.py, one thread, CPU clock, A/B in one process): 0.99x with it on alone,
# peak memory unchanged (361 MB).
FUSE_BATCH_NORM_RELU = True


def fuse_batch_norm_relu(tape):
    """`tape` with each relu(batch_norm_apply(…) [+ skip]) computed by one `batch_norm_relu` call."""
    if not FUSE_BATCH_NORM_RELU:
        return tape
    users, outputs = tape.consumers(), set(tape.outputs)

    def only_for(node, user):
        return isinstance(node, Call) and users[node] == [user] and node not in outputs

    replace, drop = {}, set()
    for n in tape.nodes:
        if not (isinstance(n, Call) and n.prim is ew.relu):
            continue
        inner, skip = n.args[0], None
        if isinstance(inner, Call) and inner.prim is ew.add and only_for(inner, n) and not inner.params:
            a, b = inner.args
            apply, skip = (a, b) if _is_apply(a) else (b, a)
            if not (only_for(apply, inner) and _is_apply(apply) and _like(skip, n)):
                continue
            drop.add(inner)
        elif _is_apply(inner) and only_for(inner, n):
            apply = inner
        else:
            continue
        if not _like(apply, n):
            continue
        drop.add(apply)
        x, stats, weight, bias = apply.args
        call = Call(bn.batch_norm_relu, [x, stats, weight, bias, skip], dict(apply.params), n.shape, n.dtype)
        call.location, call.scope, call.phase = n.location, n.scope, n.phase
        replace[n] = call
    return tape.copy(replace=replace, drop=drop) if replace else tape


def _is_apply(node):
    return isinstance(node, Call) and node.prim is bn.batch_norm_apply


def _like(node, relu):
    """Whether `node` (an operand of the chain) has the ReLU's shape and dtype: no broadcast, no cast."""
    return hasattr(node, "shape") and tuple(node.shape) == tuple(relu.shape) and node.dtype == relu.dtype
