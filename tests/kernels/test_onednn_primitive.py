"""avalon/kernels/onednn/primitive.py: enum values checked against the library, descriptors over numpy
arrays, reorders, the primitive cache and the user scratchpad."""
import ctypes

import numpy as np
import pytest

from avalon.kernels import onednn

needs_onednn = pytest.mark.skipif(not onednn.available(), reason="oneDNN (avalon[fast]) is not installed")
if onednn.available():
    from avalon.kernels.onednn import primitive as P


def _name(function, value):
    fn = getattr(P.lib(), function)
    fn.restype, fn.argtypes = ctypes.c_char_p, [ctypes.c_int]
    return fn(value).decode()


@needs_onednn
def test_enum_values_are_the_librarys():
    assert _name("dnnl_dt2str", P.F32) == "f32"
    assert _name("dnnl_fmt_tag2str", P.FORMAT_ANY) == "any"
    assert [_name("dnnl_prop_kind2str", v) for v in (P.FORWARD_TRAINING, P.FORWARD_INFERENCE, P.BACKWARD_DATA,
                                                     P.BACKWARD_WEIGHTS)] == \
        ["forward_training", "forward_inference", "backward_data", "backward_weights"]
    assert _name("dnnl_scratchpad_mode2str", P.SCRATCHPAD_USER) == "user"


@needs_onednn
def test_a_strided_view_reorders_into_a_contiguous_array_and_the_argument_values_match():
    a = np.arange(2 * 3 * 5 * 4, dtype=np.float32).reshape(2, 3, 5, 4)
    view = a.transpose(0, 3, 1, 2)[:, ::2]  # non-contiguous, strides in whole elements
    out = np.empty(view.shape, np.float32)
    src, dst = P.Desc.of(view), P.Desc.of(out)
    prim = P.reorder(src, dst)
    # the descriptors reported per execute argument are the ones given: ARG_SRC and ARG_DST are right
    assert prim.arg_md(P.ARG_SRC) == src and prim.arg_md(P.ARG_DST) == dst
    assert prim.md(P.QUERY_SRC_MD) == src and prim.md(P.QUERY_DST_MD) == dst
    assert not prim.arg_md(P.ARG_SRC) == dst
    prim.execute({P.ARG_SRC: view, P.ARG_DST: out})
    np.testing.assert_array_equal(out, view)
    assert prim.implementation()  # oneDNN names the kernel it chose


@needs_onednn
def test_a_primitive_executes_again_on_other_arrays_of_the_same_layout():
    dst = np.empty((3, 4), np.float32)
    prim = P.reorder(P.Desc.plain((3, 4), np.float32), P.Desc.plain((3, 4), np.float32))
    for k in range(3):
        src = np.full((3, 4), k, np.float32)
        prim.execute({P.ARG_SRC: src, P.ARG_DST: dst})
        np.testing.assert_array_equal(dst, src)


@needs_onednn
def test_describable_refuses_negative_and_partial_element_strides():
    a = np.zeros((4, 4), np.float32)
    assert P.describable(a) and P.describable(a.T) and P.describable(a[::2])
    assert not P.describable(a[::-1])
    raw = np.zeros(17, np.uint8)[1:].view(np.float32)  # an offset buffer is still whole elements
    assert P.describable(raw)
    assert P.element_strides(a.T) == (1, 4)


@needs_onednn
def test_the_cache_makes_once_per_key_and_drops_the_least_recently_used():
    cache = P.Cache(size=2)
    made = []

    def make(k):
        return lambda: made.append(k) or k

    assert cache.get("a", make("a")) == "a" and cache.get("a", make("a")) == "a"
    cache.get("b", make("b"))
    cache.get("a", make("a"))  # a is now the most recent
    cache.get("c", make("c"))  # drops b
    cache.get("b", make("b"))
    assert made == ["a", "b", "c", "b"] and cache.created == 4 and len(cache) == 2


@needs_onednn
def test_the_cache_makes_a_primitive_per_thread_count_at_that_count():
    cache = P.Cache(size=4)
    counts = []

    def make():  # the OpenMP count of the calling thread while the primitive is made
        counts.append(onednn.library.threads())
        return len(counts)

    with onednn.library.keeping_threads():
        one, two = cache.get("k", make, threads=1), cache.get("k", make, threads=2)
        assert (cache.get("k", make, threads=1), cache.get("k", make, threads=2)) == (one, two)
        assert onednn.library.threads() == 2  # the count is left set for the execute that follows
    assert counts == [1, 2] and cache.created == 2 and one != two


@needs_onednn
def test_a_failed_descriptor_raises_onednn_error_and_leaks_no_attribute():
    with pytest.raises(onednn.OneDNNError, match="dnnl_reorder_primitive_desc_create failed"):
        P.reorder(P.Desc.plain((3, 4), np.float32), P.Desc.plain((4, 3), np.float32))


@needs_onednn
def test_the_scratchpad_buffer_grows_and_is_reused():
    first = P._scratchpad(100)
    assert first % 64 == 0
    assert P._scratchpad(50) == first  # big enough already: the same buffer
    grown = P._scratchpad(1 << 20)
    assert grown % 64 == 0 and P._scratch.buffer.nbytes >= (1 << 20)
