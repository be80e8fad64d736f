"""Gradient accumulation without scatters into zeros: the `accumulate_slices` pass.

The gradient of a slice `h[:, t]` (and of `x[i]`, split, chunk, unbind, narrow …) is a `scatter_add`:
a full-size array of zeros with the slice's gradient written in. When a loop takes many slices of one
array, the backward pass sums all those full-size arrays with `add`s, so T slices cost T zeroed arrays
and T-1 full-size additions: quadratic in T. The pass finds such trees of `add`s whose leaves are
scatters of basic slices (and other gradients of the whole array), and replaces each by one
`scatter_sum` call: one buffer, each slice's gradient added into its place. The tape it is given is
untouched, so it stays what gradients of gradients and `tape.interpret` see; in the compiled replay
the buffer is a dead one of the same shape when `buffer_plan` finds one.
"""
from ..ops import elementwise as ew
from ..ops import index as ix
from ..tape import Call, Node


def accumulate_slices(tape):
    """Rewrite each tree of `add`s over `scatter_add`s of basic slices into one `scatter_sum`.

    A tree's inner nodes (its `add`s and the scatters it absorbs) must have no other user and not be
    outputs, so they can go; anything else in the tree (a gradient of the whole array, an `add` used
    elsewhere, a scatter with index arrays, whose repeated indices need `add.at`) stays a whole-array
    part. Parts are added in the tree's left-to-right order, which is the order the backward pass
    summed them in: where slices do not overlap the numbers are the plain path's, bit for bit.
    """
    users = tape.consumers()
    outputs = set(tape.outputs)
    absorbed, replace = set(), {}
    for root in reversed(tape.nodes):
        if not _is_add(root) or root in absorbed:
            continue
        inner, parts = _collect(root, users, outputs)
        if len(parts) < 2 or all(key == () for _, key in parts):
            continue
        absorbed |= inner
        values, keys = zip(*parts)
        call = Call(ix.scatter_sum, values, {"keys": keys, "shape": root.shape}, root.shape, root.dtype)
        call.location, call.scope, call.phase = root.location, root.scope, root.phase
        replace[root] = call
    return tape.copy(replace=replace, drop=absorbed - set(replace)) if replace else tape


def _collect(root, users, outputs):
    """`root`'s inner nodes, and its sum as (value, key) parts, left to right (a loop, not recursion:
    a chain of a thousand time steps is a thousand deep).

    A node reached twice (a tree that shares a branch) counts twice, as in the sum; one first taken
    whole (a user outside the tree not yet seen to be inside) stays whole, since it is kept."""
    inner, whole, parts = {root}, set(), []
    stack = list(reversed(root.args))
    while stack:
        node = stack.pop()
        mine = isinstance(node, Call) and node.shape == root.shape and node.dtype == root.dtype and \
            node not in outputs and node not in whole and all(u in inner for u in users[node])
        if mine and _is_add(node):
            inner.add(node)
            stack.extend(reversed(node.args))
        elif mine and node.prim is ix.scatter_add and len(node.args) == 1:  # no index arrays: a basic key
            inner.add(node)
            parts.append((node.args[0], node.params["key"]))
        else:
            whole.add(node)
            parts.append((node, ()))
    return inner, parts


def _is_add(node):
    """An `add` of two nodes of its own shape (no broadcasting, no Python numbers)."""
    return isinstance(node, Call) and node.prim is ew.add and len(node.args) == 2 and \
        all(isinstance(a, Node) and a.shape == node.shape and a.dtype == node.dtype for a in node.args)
