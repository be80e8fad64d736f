"""torch.nn.utils.rnn: batches of sequences of different lengths, padded into one array
(`pad_sequence`) or packed (`PackedSequence`, which nn.RNN, nn.LSTM and nn.GRU take and return).

A PackedSequence holds the time steps one after another, each with the sequences still running at
that step, longest first: `data` (total length, *features), `batch_sizes` (how many sequences run at
each step, int64), and `sorted_indices` / `unsorted_indices`, the permutation that sorted the batch by
length (None when it came sorted).

`data` is traced and differentiated like any array. Packing and unpacking are single gathers, so
gradients flow back to the padded input. The lengths decide shapes: given as a list (or an array
outside traced code) they are concrete, and a PackedSequence passed to a traced function (a model
called on it) carries `batch_sizes` and the permutation as static values (each new pattern of
lengths traces again). Lengths that are traced values — a model called as `model(x, lengths)` on
arrays — cannot decide shapes: the PackedSequence then stays the padded batch with its lengths,
the recurrent layers mask it all the same, and `pad_packed_sequence` gives the padded batch back (its
`data` and `batch_sizes` are refused; the checks on the lengths run at every call).

>>> packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
>>> output, (h_n, c_n) = lstm(packed)
>>> padded, lengths = pad_packed_sequence(output, batch_first=True)
"""
import numpy as np

from ... import numpy_api as npa
from ...backend import to_numpy
from ...errors import AvalonError, ShapeError
from ...ops import elementwise as ew
from ...ops import sort as so
from ...ops.callback import host_callback
from ...tensor import plain, wrap
from ...tracing.context import refuse
from ...tree import register_container

__all__ = ["PackedSequence", "pad_sequence", "pack_padded_sequence", "pad_packed_sequence", "pack_sequence",
           "unpad_sequence", "unpack_sequence"]


def _indices(x):
    return None if x is None else wrap(np.asarray(to_numpy(plain(x)), dtype=np.int64))


class PackedSequence(tuple):
    """Sequences of different lengths packed time step after time step: (data, batch_sizes,
    sorted_indices, unsorted_indices), as torch's. Made by `pack_padded_sequence` / `pack_sequence`
    and by the recurrent layers; `unsorted_indices` is derived from `sorted_indices` when left out.
    """

    def __new__(cls, data, batch_sizes, sorted_indices=None, unsorted_indices=None):
        sorted_indices = _indices(sorted_indices)
        if unsorted_indices is None and sorted_indices is not None:
            unsorted_indices = np.argsort(sorted_indices)
        return super().__new__(cls, (data, _indices(batch_sizes), sorted_indices, _indices(unsorted_indices)))

    data = property(lambda self: self[0], doc="The packed steps: (sum of lengths, *features).")
    batch_sizes = property(lambda self: self[1], doc="How many sequences run at each time step (int64).")
    sorted_indices = property(lambda self: self[2], doc="The batch order longest first (None: already so).")
    unsorted_indices = property(lambda self: self[3], doc="The inverse of `sorted_indices`.")

    def __repr__(self):
        return (f"PackedSequence(data={self.data!r}, batch_sizes={self.batch_sizes!r}, "
                f"sorted_indices={self.sorted_indices!r}, unsorted_indices={self.unsorted_indices!r})")


def _static(indices):
    return None if indices is None else tuple(indices.tolist())


# In traced code only `data` is an array input; the lengths ride in the cache key.
register_container(PackedSequence,
                   lambda p: ((p.data,), tuple(_static(a) for a in p[1:])),
                   lambda aux, children: PackedSequence(children[0], *aux))


def _traced(x):
    return getattr(type(x), "_avalon_tracer", False)


class _TracedLengths(PackedSequence):
    """A PackedSequence made in traced code from traced lengths: the packed layout would depend on
    their values, so it keeps the padded batch `steps` (T, B, *) and `lengths` (B,) instead."""

    def __new__(cls, steps, lengths, sorted_indices, unsorted_indices):
        packed = tuple.__new__(cls, (None, None, sorted_indices, unsorted_indices))
        packed.steps, packed.lengths = steps, lengths
        return packed

    def _refused(self, field):
        return refuse(f"PackedSequence.{field} of traced lengths",
                      f"its shape would depend on the lengths' values, which a compiled replay does not look at",
                      "use pad_packed_sequence(...) to get the padded batch, or pass the lengths as a Python "
                      "list (lengths.tolist() outside the traced call; each new list traces again)",
                      lambda: None)

    data = property(lambda self: self._refused("data"))
    batch_sizes = property(lambda self: self._refused("batch_sizes"))

    def __repr__(self):
        return f"PackedSequence(steps={self.steps!r}, lengths={self.lengths!r}) (traced lengths)"


def _concrete_again(aux, children):
    """A traced-lengths PackedSequence a traced function returns comes back packed, like the input
    it was made from."""
    steps, lengths, sorted_indices = children
    if _traced(steps) or _traced(lengths):
        return _TracedLengths(steps, lengths, sorted_indices, None if sorted_indices is None
                              else so.argsort(sorted_indices, axis=0, kind="stable"))
    return pack_padded_sequence(steps, lengths, enforce_sorted=sorted_indices is None)


register_container(_TracedLengths, lambda p: ((p.steps, p.lengths, p.sorted_indices), None), _concrete_again)


def _running(lengths, steps, ndim):
    """(steps, B, 1, …) booleans of `ndim` dimensions: whether each sequence still runs at each step."""
    if _traced(lengths):
        running = ew.less(np.arange(steps)[:, None], npa.expand_dims(lengths, 0))
    else:
        running = np.arange(steps)[:, None] < np.asarray(lengths)[None, :]
    return npa.reshape(running, (steps, -1) + (1,) * (ndim - 2))


class _PackCheck:
    """`pack_padded_sequence`'s checks of traced lengths, run while tracing and at every replay."""

    __slots__ = ("steps", "enforce_sorted")

    def __init__(self, steps, enforce_sorted):
        self.steps, self.enforce_sorted = steps, enforce_sorted

    def __call__(self, lengths):
        _check_lengths(lengths, self.steps, self.enforce_sorted)


class _PadCheck:
    """`pad_packed_sequence`'s check of traced lengths: the padded result has `steps` steps, which
    torch gives only when the longest sequence has that many (or `total_length` says so)."""

    __slots__ = ("steps", "total_length")

    def __init__(self, steps, total_length):
        self.steps, self.total_length = steps, total_length

    def __call__(self, lengths):
        if self.total_length is not None:
            _check_total_length(self.total_length, int(lengths.max()))
        elif lengths.max() != self.steps:
            raise ShapeError(
                f"pad_packed_sequence: with traced lengths the padded batch keeps its {self.steps} steps, but the "
                f"longest sequence has {int(lengths.max())} (torch would return that many)",
                fix="pad the batch to its longest sequence, pass total_length, or pass the lengths as a list")


def _check_lengths(lengths, steps, enforce_sorted):
    if lengths.min() <= 0 or lengths.max() > steps:
        raise ShapeError(f"pack_padded_sequence: every length must be in 1..{steps} (the padded length), got "
                         f"{lengths.tolist()}")
    if enforce_sorted and np.any(np.diff(lengths) > 0):
        raise AvalonError(f"pack_padded_sequence: lengths {lengths.tolist()} are not in decreasing order; sort "
                          "the batch or pass enforce_sorted=False")


def _check_total_length(total_length, longest):
    if total_length < longest:
        raise ShapeError(f"pad_packed_sequence: total_length={total_length} is shorter than the longest sequence "
                         f"({longest} steps)")


def _lengths(lengths, where):
    """The lengths as a concrete int64 array; traced ones are refused where they would decide how
    many arrays there are."""
    if _traced(lengths):
        lengths = refuse(
            f"{where} with traced lengths",
            "the lengths decide how long each of the arrays it returns is, and a compiled replay keeps the "
            "shapes it was traced with",
            "keep the padded batch (with a mask from the lengths), or pass the lengths as a Python list "
            "(lengths.tolist() outside the traced call; each new list traces again)",
            lambda: npa._concrete(lengths))
    return np.asarray(to_numpy(plain(lengths)), dtype=np.int64).reshape(-1)


def _order(sequence):
    """The batch order of a PackedSequence, longest first (arange when it came sorted)."""
    batch = int(sequence.batch_sizes[0])
    return np.arange(batch) if sequence.sorted_indices is None else np.asarray(sequence.sorted_indices)


def pad_sequence(sequences, batch_first=False, padding_value=0.0, padding_side="right"):
    """Stack arrays of shapes (L_i, *) into (max L, B, *) (or (B, max L, *) with `batch_first`),
    filling with `padding_value` after each sequence (before it, with `padding_side='left'`)."""
    sequences = list(sequences)
    if not sequences:
        raise AvalonError("pad_sequence needs at least one sequence")
    if padding_side not in ("left", "right"):
        raise AvalonError(f"pad_sequence: padding_side must be 'left' or 'right', not {padding_side!r}")
    trailing = {tuple(s.shape[1:]) for s in sequences}
    if len(trailing) > 1 or any(s.ndim == 0 for s in sequences):
        raise ShapeError(f"pad_sequence: the sequences must agree past their first dimension, got shapes "
                         f"{[tuple(s.shape) for s in sequences]}")
    longest = max(s.shape[0] for s in sequences)
    padded = []
    for s in sequences:
        gap = longest - s.shape[0]
        widths = ((gap, 0) if padding_side == "left" else (0, gap),) + ((0, 0),) * (s.ndim - 1)
        padded.append(npa.pad(s, widths, constant_values=padding_value) if gap else s)
    return npa.stack(padded, axis=0 if batch_first else 1)


def _pack(steps, lengths, order):
    """Pack `steps` (T, B, *) with sequence b running `lengths[b]` steps, taking the batch in `order`
    (longest first): (data, batch_sizes). One gather, so the gradient reaches `steps`."""
    sorted_lengths = lengths[order]
    batch_sizes = (sorted_lengths[None, :] > np.arange(sorted_lengths[0])[:, None]).sum(axis=1)
    batch = steps.shape[1]
    rows = np.concatenate([t * batch + order[:n] for t, n in enumerate(batch_sizes)])
    flat = npa.reshape(steps, (-1,) + tuple(steps.shape[2:]))
    return npa.take(flat, rows, axis=0), batch_sizes


def pack_padded_sequence(input, lengths, batch_first=False, enforce_sorted=True):
    """Pack a padded batch (T, B, *) (or (B, T, *) with `batch_first`) whose sequence b has
    `lengths[b]` steps. With `enforce_sorted` the lengths must not increase; otherwise the batch is
    sorted longest first (ties keep their order) and `sorted_indices` records how."""
    steps = npa.swapaxes(input, 0, 1) if batch_first else input
    count = lengths.shape[0] if hasattr(lengths, "shape") else len(lengths)
    if steps.ndim < 2 or count != steps.shape[1]:
        raise ShapeError(f"pack_padded_sequence: {count} lengths for a batch of shape {tuple(input.shape)} "
                         f"(batch_first={batch_first})")
    if _traced(lengths):
        host_callback(lengths, callback=_PackCheck(steps.shape[0], enforce_sorted))
        if enforce_sorted:
            return _TracedLengths(steps, lengths, None, None)
        order = so.argsort(lengths, axis=0, kind="stable", descending=True)
        return _TracedLengths(steps, lengths, order, so.argsort(order, axis=0, kind="stable"))
    lengths = _lengths(lengths, "pack_padded_sequence")
    _check_lengths(lengths, steps.shape[0], enforce_sorted)
    sorted_indices = None if enforce_sorted else np.argsort(-lengths, kind="stable")
    data, batch_sizes = _pack(steps, lengths, np.arange(len(lengths)) if sorted_indices is None else sorted_indices)
    return PackedSequence(data, batch_sizes, sorted_indices)


def pack_sequence(sequences, enforce_sorted=True):
    """Pack a list of arrays of shapes (L_i, *) (longest first, unless `enforce_sorted=False`)."""
    sequences = list(sequences)
    return pack_padded_sequence(pad_sequence(sequences), [s.shape[0] for s in sequences],
                                enforce_sorted=enforce_sorted)


def _lengths_of(sequence):
    """Each sequence's length, in the batch's original order."""
    batch_sizes = np.asarray(sequence.batch_sizes)
    sorted_lengths = (batch_sizes[None, :] > np.arange(batch_sizes[0])[:, None]).sum(axis=1)
    lengths = np.empty_like(sorted_lengths)
    lengths[_order(sequence)] = sorted_lengths
    return lengths


def pad_packed_sequence(sequence, batch_first=False, padding_value=0.0, total_length=None):
    """Undo `pack_padded_sequence`: (padded (T, B, *) or (B, T, *), lengths) in the batch's original
    order, T the longest length or `total_length` (to restore a longer padding)."""
    if isinstance(sequence, _TracedLengths):
        padded, lengths = _pad_traced(sequence, padding_value, total_length)
    else:
        padded, lengths = _pad(sequence, padding_value, total_length)
    return (npa.swapaxes(padded, 0, 1) if batch_first else padded), lengths


def _pad(sequence, padding_value, total_length):
    data, batch_sizes = sequence.data, np.asarray(sequence.batch_sizes)
    steps = len(batch_sizes)
    if total_length is not None:
        _check_total_length(total_length, steps)
        steps = total_length
    batch = int(batch_sizes[0])
    order = _order(sequence)
    position = np.empty_like(order)
    position[order] = np.arange(batch)  # where each sequence of the batch sits among the packed rows
    starts = np.concatenate([[0], np.cumsum(batch_sizes)])
    # row of data for (step t, sequence b), or the padding row appended after the data
    rows = np.full((steps, batch), starts[-1], dtype=np.int64)
    for t, n in enumerate(batch_sizes):
        running = position < n
        rows[t, running] = starts[t] + position[running]
    padding = np.full((1,) + tuple(data.shape[1:]), padding_value, dtype=data.dtype)
    return npa.take(npa.concatenate([data, padding], axis=0), rows, axis=0), wrap(_lengths_of(sequence))


def _pad_traced(sequence, padding_value, total_length):
    """The padded batch itself, with `padding_value` where each sequence has ended."""
    steps, lengths = sequence.steps, sequence.lengths
    host_callback(lengths, callback=_PadCheck(steps.shape[0], total_length))
    if total_length is not None and total_length > steps.shape[0]:
        steps = npa.pad(steps, ((0, total_length - steps.shape[0]),) + ((0, 0),) * (steps.ndim - 1))
    elif total_length is not None:
        steps = steps[:total_length]
    running = _running(lengths, steps.shape[0], steps.ndim)
    return ew.where(running, steps, np.asarray(padding_value, dtype=steps.dtype)), lengths


def _padded_steps(sequence):
    """(padded steps (T, B, *), lengths) of a PackedSequence, in the batch's order: what a recurrent
    layer runs on."""
    if isinstance(sequence, _TracedLengths):
        return sequence.steps, sequence.lengths
    padded, lengths = _pad(sequence, 0.0, None)
    return padded, np.asarray(lengths)


def _repacked(like, steps):
    """`steps` (T, B, *) packed as the PackedSequence `like` is (its lengths and permutation)."""
    if isinstance(like, _TracedLengths):
        return _TracedLengths(steps, like.lengths, like.sorted_indices, like.unsorted_indices)
    data, _ = _pack(steps, _lengths_of(like), _order(like))
    return PackedSequence(data, *like[1:])


def unpad_sequence(padded_sequences, lengths, batch_first=False):
    """The list of sequences in a padded batch, each cut to its length."""
    lengths = _lengths(lengths, "unpad_sequence")
    batch = padded_sequences if batch_first else npa.swapaxes(padded_sequences, 0, 1)
    return [batch[b, :n] for b, n in enumerate(lengths.tolist())]


def unpack_sequence(packed_sequences):
    """The list of sequences in a PackedSequence, in the batch's original order."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
