"""`DistributedDataParallel`: the same model on every rank, gradients averaged across ranks.

At construction every rank takes rank 0's parameters and buffers. `avalon.grad(loss_fn, ddp, x, y)`
then returns gradients already averaged over the ranks (what torch's `p.grad` holds after `backward()`
under DDP): `avalon.grad` hands a DDP holder's fresh gradients to `_reduced_gradients` below, which sums
them across ranks in buckets (flat buffers of about `bucket_cap_mb`, one message each, as torch) and
divides by the world size. So `opt.step(grads[0])` keeps every rank's parameters identical.

`no_sync` sets torch's `require_backward_grad_sync` flag, an ordinary attribute, so the compile cache
keys on it (a step compiled with it and one without are two entries). The gradients accumulated under
it live in a slotted `_Runtime`, which the cache keys by identity: they neither retrace nor are traced.
"""
import contextlib

import numpy as np

from ...backend import is_array
from ...distributed import all_reduce_sum, broadcast, broadcast_from, group
from ...distributed.collectives import arrive
from ...distributed.errors import DistributedError
from ...tensor import wrap
from ...tracing import Tracer
from ..module import Module


class _Runtime:
    # Slotted: the compile cache keys it by identity, so changing its fields does not retrace
    __slots__ = ("bucket_bytes", "pending")

    def __init__(self, bucket_bytes):
        self.bucket_bytes = bucket_bytes
        self.pending = None  # {name: local gradient sum} accumulated under no_sync


class DistributedDataParallel(Module):
    """`module`, replicated on every rank of the process group, with gradients averaged over ranks.

    >>> dist.init_process_group("mpi")
    >>> ddp = DistributedDataParallel(model)          # every rank now holds rank 0's weights
    >>> opt = optim.SGD(ddp.parameters(), lr=0.1)
    >>> loss, grads = avalon.grad(loss_fn, ddp, x, y)  # grads[0]: averaged over all ranks
    >>> opt.step(grads[0])

    `ddp.module` is the wrapped model; `state_dict()` keys carry torch's `module.` prefix. Buffers (batch
    norm's running statistics) are rank 0's at the start of every forward, as torch's (`broadcast_buffers`);
    `SyncBatchNorm` computes them from all ranks' batches. `bucket_cap_mb` (25) sizes the buckets. The other arguments (`device_ids`, `find_unused_parameters`, `static_graph` …) are torch's,
    accepted and without effect here: a parameter that gets no gradient contributes zeros.
    """

    def __init__(self, module, device_ids=None, output_device=None, dim=0, broadcast_buffers=None, init_sync=True,
                 process_group=None, bucket_cap_mb=None, find_unused_parameters=False, check_reduction=False,
                 gradient_as_bucket_view=False, static_graph=False, delay_all_reduce_named_params=None,
                 param_to_hook_all_reduce=None, mixed_precision=None, device_mesh=None,
                 skip_all_reduce_unused_params=False, bucket_cap_mb_list=None, batched_grad_copy=False,
                 forward_sync_buffers=None):
        super().__init__()
        if not isinstance(module, Module):
            raise DistributedError(f"DistributedDataParallel wraps an nn.Module, got a {type(module).__name__}",
                                   "pass the model: DistributedDataParallel(model)")
        group.current()  # refuses, saying what to call, before anything changes
        self.module = module
        self._runtime = _Runtime(int((25 if bucket_cap_mb is None else bucket_cap_mb) * 1024 * 1024))
        self.require_backward_grad_sync = True
        self.broadcast_buffers = broadcast_buffers in (None, True)
        arrays = list(module.parameters()) if init_sync else []
        if init_sync and broadcast_buffers in (None, True):
            arrays += [b for b in module.buffers() if is_array(b)]
        for bucket in _buckets([(str(i), a) for i, a in enumerate(arrays)], self._runtime.bucket_bytes):
            flat = _flat(bucket)
            broadcast(flat, src=0)
            for (_, array), part in zip(bucket, _parts(flat, bucket)):
                np.copyto(array, part)

    def forward(self, *inputs, **kwargs):
        if self.broadcast_buffers and group.active() is not None:
            self._take_rank0_buffers()
        return self.module(*inputs, **kwargs)

    def _take_rank0_buffers(self):
        """As torch: every forward starts from rank 0's buffers, one recorded broadcast per dtype (replays
        communicate too)."""
        held = [(owner, name, buffer) for _, owner in self.module.named_modules()
                for name, buffer in owner._buffers.items() if buffer is not None]
        for dtype in dict.fromkeys(np.dtype(b.dtype) for _, _, b in held):
            same = [(owner, name, b) for owner, name, b in held if np.dtype(b.dtype) == dtype]
            flat = broadcast_from(np.concatenate([np.reshape(b, (-1,)) for _, _, b in same]), src=0)
            offset = 0
            for owner, name, b in same:
                size = int(np.prod(b.shape))
                setattr(owner, name, np.reshape(flat[offset:offset + size], b.shape))
                offset += size

    @contextlib.contextmanager
    def no_sync(self):
        """Gradients of the calls inside are this rank's own (no communication); the first `avalon.grad`
        after the block returns the average over ranks of everything accumulated, its own gradients
        included, as torch's `p.grad` after the synchronised `backward()`. (Inside a compiled step,
        avalon.jit around avalon.grad, gradients under no_sync are local and are not accumulated.)

        >>> with ddp.no_sync():
        ...     for x, y in micro_batches[:-1]:
        ...         avalon.grad(loss_fn, ddp, x, y)
        >>> loss, grads = avalon.grad(loss_fn, ddp, *micro_batches[-1])   # averaged over ranks and batches
        """
        before = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = before

    def _reduced_gradients(self, grads):
        """`grads` (a tree.Grads of this holder, changed in place) averaged over ranks, or accumulated
        locally under `no_sync`."""
        runtime, sync = self._runtime, self.require_backward_grad_sync
        named = [(name, g) for name, g in grads.items() if g is not None]
        if not named:
            return grads
        if any(isinstance(g, Tracer) for _, g in named):  # grad inside traced code: recorded collectives
            size = group.get_world_size()
            for name, g in named:
                grads[name] = all_reduce_sum(g) * (1.0 / size) if sync else g
            return grads
        if not sync:
            pending = runtime.pending or {}
            runtime.pending = {name: pending[name] + g if name in pending else np.array(g, copy=True)
                               for name, g in named}
            return grads
        if runtime.pending:
            named = [(name, g + runtime.pending[name] if name in runtime.pending else g) for name, g in named]
            runtime.pending = None
        pg = group.active()
        if pg is not None:
            arrive(pg, "all_reduce (DistributedDataParallel gradients)")
        # Reverse order, as torch: the last layers' gradients are the first ready in a backward pass.
        for bucket in _buckets(named[::-1], runtime.bucket_bytes):
            flat = _flat(bucket)
            if pg is not None:
                pg.comm.Allreduce(pg.mpi.IN_PLACE, flat, pg.mpi.SUM)
                flat *= 1.0 / pg.size
            for (name, _), part in zip(bucket, _parts(flat, bucket)):
                grads[name] = wrap(part)  # a view of the bucket: no copy back
        return grads


def _buckets(named, cap):
    """Consecutive runs of (name, array) of one dtype, each about `cap` bytes at most (one array alone
    may exceed it)."""
    bucket, size = [], 0
    for name, array in named:
        if bucket and (size + array.nbytes > cap or array.dtype != bucket[0][1].dtype):
            yield bucket
            bucket, size = [], 0
        bucket.append((name, array))
        size += array.nbytes
    if bucket:
        yield bucket


def _flat(bucket):
    return np.concatenate([np.asarray(a).reshape(-1) for _, a in bucket])


def _parts(flat, bucket):
    """Each array's part of `flat`, in its shape (views)."""
    offset = 0
    for _, array in bucket:
        yield flat[offset:offset + array.size].reshape(array.shape)
        offset += array.size
