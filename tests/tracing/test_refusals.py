"""What tracing refuses: each construct raises avalon.UnsupportedConstruct at the user's exact line,
naming the construct, the code, why, and the rewrite; avalon.check collects them all; a rule
registered for a numpy function makes it traceable and differentiable."""
import numpy as np
import pytest

import avalon
from avalon.ops import PRIMITIVES
from avalon.rules import registry
from avalon.tracing import Tracer

HERE = __file__


def line_of(marker):
    """The line of this file carrying the comment `# <marker>`."""
    with open(HERE) as source:
        return next(i for i, text in enumerate(source, 1) if text.rstrip().endswith(f"# {marker}"))


class Scaled:
    """A user's holder (default registration: array attributes are parameters)."""

    def __init__(self):
        self.w = np.ones(3, np.float32)

    def __call__(self, x):
        self.w += x  # param-iadd
        return self.w.sum()


avalon.register_holder(Scaled)


def loop(x):
    total = 0
    for row in x:  # for-loop
        total = total + row
    return total


def comprehension(x):
    return sum([v + 1 for v in x])  # comprehension


def branch(x):
    if x.sum() > 0:  # if-branch
        return x
    return -x


def to_float(x):
    return float(x.sum()) * x  # float


def to_int(x):
    return x * int(x[0])  # int


def item(x):
    return x * x.sum().item()  # item


def formatted(x):
    print(f"loss {x.sum():.3f}")  # format
    return x


def setitem(x):
    y = x * 2
    row = y[0]  # a view of y, still held: in torch it would see the write
    y[1] = 1.0  # setitem
    return y + row


def iadd_input(x):
    x += 1  # iadd
    return x


def inplace_method(x):
    row = x[0]  # a live view of x: in torch it would change too
    x.add_(1)  # add_
    return x + row


def ufunc_out(x):
    buffer = np.empty(3, np.float32)
    np.exp(x, out=buffer)  # ufunc-out
    return x


def add_at(x):
    np.add.at(x, [0], 1.0)  # add-at
    return x


def reduce_out(x):
    return np.sum(x, out=np.empty((), np.float32))  # sum-out


def no_rule_function(x):
    return np.nancumsum(x)  # nancumsum


def no_rule_ufunc(x):
    return np.spacing(x)  # spacing


def no_rule_linalg(x):
    return np.linalg.inv(x[:, None] * x)  # inv


def asarray(x):
    return np.asarray(x) * 2  # asarray


def array(x):
    return np.array(x) * 2  # array


def array_of_tracers(x):
    return np.array([x, x]).sum()  # array-of-tracers


def numpy_python_function(x):
    np.testing.assert_array_less(x, 10.0)  # numpy-python
    return x


def mask_index(x):
    return x[x > 0].sum()  # mask-index


def where_one_argument(x):
    return np.where(x > 0)  # where-1


def ufunc_where(x):
    return np.exp(x, where=np.array([True, False, True]))  # ufunc-where


def reduce_initial(x):
    return np.add.reduce(x, initial=1.0)  # reduce-initial


def view_dtype(x):
    return x.view(np.int32)  # view-dtype


def iadd_into_plain(x):
    total = np.zeros(3, np.float32)
    total += x  # plain-iadd
    return total


DATA_DEPENDENT = ("data-dependent control flow", "np.where(cond, a, b)")
CASES = [
    # function, marker, words in the construct, words in the fix
    (loop, "for-loop", "Python iteration over a traced array", "vectorise"),
    (comprehension, "comprehension", "Python iteration over a traced array", "[a + 1 for a in A]"),
    (branch, "if-branch", "bool() of a traced value", DATA_DEPENDENT[1]),
    (to_float, "float", "float() of a traced value (data-dependent control flow)", DATA_DEPENDENT[1]),
    (to_int, "int", "int() of a traced value", DATA_DEPENDENT[1]),
    (item, "item", ".item() of a traced value", DATA_DEPENDENT[1]),
    (formatted, "format", "format(x, '.3f') of a traced value", "format it outside"),
    (setitem, "setitem", "in-place assignment `x[...] = v`", "np.where(mask, v, x)"),
    (iadd_input, "iadd", "in-place update `+=` of the traced input 'x'", "`x = x + ...`"),
    (Scaled(), "param-iadd", "in-place update `+=` of the traced parameter 'w'", "`w = self.w + ...`"),
    (iadd_into_plain, "plain-iadd", "np.add(..., out=...) writing into an array", "y = np.add(...)"),
    (inplace_method, "add_", "in-place method .add_()", "`x = x.add(...)`"),
    (ufunc_out, "ufunc-out", "np.exp(..., out=...) writing into an array", "y = np.exp(...)"),
    (add_at, "add-at", "np.add.at(x, ...) writing into an array", "avalon.index_add"),
    (reduce_out, "sum-out", "np.sum(..., out=...) writing into an array", "y = np.sum(...)"),
    (no_rule_function, "nancumsum", "np.nancumsum has no differentiation rule", "@avalon.rule(np.nancumsum)"),
    (no_rule_ufunc, "spacing", "np.spacing has no differentiation rule", "@avalon.rule(np.spacing)"),
    (no_rule_linalg, "inv", "np.linalg.inv has no differentiation rule", "@avalon.rule(np.linalg.inv)"),
    (asarray, "asarray", "np.asarray / np.array", "@avalon.rule(np.the_function)"),
    (array, "array", "np.asarray / np.array", "call numpy functions on it directly"),
    (array_of_tracers, "array-of-tracers", "np.asarray / np.array", "np.stack / avalon.stack"),
    (numpy_python_function, "numpy-python", "inside np.testing.assert_array_less",
     "@avalon.rule(np.testing.assert_array_less)"),
    (mask_index, "mask-index", "boolean-mask indexing with a traced mask", "np.where(mask, x, 0)"),
    (where_one_argument, "where-1", "np.where(condition) with one argument", "np.where(condition, x, y)"),
    (ufunc_where, "ufunc-where", "np.exp(..., where=...) in traced code", "np.where(mask, f(x), other)"),
    (reduce_initial, "reduce-initial", "np.add.reduce(..., initial=...) in traced code", "leave the keyword out"),
    (view_dtype, "view-dtype", "view(<class 'numpy.int32'>): reinterpreting", "x.astype(dtype)"),
]


@pytest.mark.parametrize("f, marker, construct, fix", CASES, ids=[c[1] for c in CASES])
def test_refused_at_the_users_line(f, marker, construct, fix):
    x = np.array([1.0, -2.0, 3.0], np.float32)
    with pytest.raises(avalon.UnsupportedConstruct) as info:
        avalon.trace(f, x)
    error = info.value
    assert isinstance(error, avalon.AvalonError)
    assert (error.filename, error.lineno) == (HERE, line_of(marker))
    assert error.code.endswith(f"# {marker}")
    assert construct in error.construct and fix in error.fix and error.why
    message = str(error)
    for part in (error.construct, f"{HERE}:{line_of(marker)}", error.code, f"why: {error.why}", f"fix: {error.fix}"):
        assert part in message


def test_np_asarray_and_np_array_reach_tracer_array(monkeypatch):
    original, seen = Tracer.__array__, []

    def spy(self, *args, **kwargs):
        seen.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Tracer, "__array__", spy)
    for convert in (np.asarray, np.array, np.ascontiguousarray):
        seen.clear()
        with pytest.raises(avalon.UnsupportedConstruct):
            avalon.trace(lambda x: convert(x), np.ones(2, np.float32))
        assert len(seen) >= 1 and isinstance(seen[0], Tracer)


def test_len_and_static_shapes_are_allowed():
    def f(x):
        n, m = x.shape
        assert len(x) == n == 2 and x.size == 6 and x.size() == (2, 3) and x.size(-1) == m == 3
        return x.reshape(m, n) if x.ndim == 2 else x

    assert avalon.trace(f, np.ones((2, 3), np.float32)).outputs[0].shape == (3, 2)


def three_problems(x):
    y = x * 2
    for row in y:  # problem-1
        pass
    if y.sum() > 0:  # problem-2
        y = y + 1
    return np.nancumsum(y)  # problem-3


def test_check_collects_every_problem_in_order():
    problems = avalon.check(three_problems, np.ones((2, 3), np.float32))
    assert isinstance(problems, list) and isinstance(problems, avalon.tracing.Problems)
    assert [p.lineno for p in problems] == [line_of(f"problem-{i}") for i in (1, 2, 3)]
    assert all(isinstance(p, avalon.UnsupportedConstruct) and p.filename == HERE for p in problems)
    assert [p.construct.split(" ")[0] for p in problems] == ["Python", "bool()", "np.nancumsum"]
    assert [p.node.prim.name for p in problems] == ["multiply", "greater", "add"]
    assert all(p.node in problems.tape.nodes for p in problems)
    assert problems.tape.inputs[0].name == "x"
    assert "3. np.nancumsum has no differentiation rule" in str(problems)


def test_check_of_clean_code_is_empty_with_its_tape():
    problems = avalon.check(lambda x: np.tanh(x).sum(), np.ones(3, np.float32))
    assert problems == [] and [n.prim.name for n in problems.tape.calls] == ["tanh", "sum"]
    assert "no problems" in str(problems)


def stops_on_a_shape_error(x):
    if x.sum() > 0:  # before-error
        pass
    return x @ np.ones((5, 5), np.float32)  # shape-error


def test_check_reports_the_error_that_stopped_tracing_last():
    problems = avalon.check(stops_on_a_shape_error, np.ones((2, 3), np.float32))
    assert [type(p) for p in problems] == [avalon.UnsupportedConstruct, avalon.ShapeError]
    assert [p.lineno for p in problems] == [line_of("before-error"), line_of("shape-error")]
    assert problems[1].node is problems.tape.nodes[-1]
    shape_error = problems[1]  # what, why and fix, like the refusals beside it
    assert shape_error.construct.startswith("matmul cannot combine operands float32 (2, 3), float32 (5, 5)")
    assert "inner dimensions differ: 3" in shape_error.why and "shape" in shape_error.fix


@pytest.fixture
def user_rules():
    """A clean slate of user rules for the test: `forget(fn)` drops a rule registered elsewhere (the
    README registers np.cbrt); afterwards every registration is as it was, so other tests still see
    these functions refused (and a user primitive named like a built-in one, `erf`, leaves its place)."""
    users, primitives = dict(registry._user_primitives), dict(PRIMITIVES)
    yield lambda *fns: [registry._user_primitives.pop(fn, None) for fn in fns]
    registry._user_primitives.clear()
    registry._user_primitives.update(users)
    PRIMITIVES.clear()
    PRIMITIVES.update(primitives)


def test_a_rule_makes_a_numpy_function_traceable_and_differentiable(user_rules):
    user_rules(np.sinc)
    f = lambda x: (np.sinc(x) * x).sum()  # noqa: E731
    x = np.linspace(0.3, 1.7, 5)
    with pytest.raises(avalon.UnsupportedConstruct, match=r"@avalon\.rule\(np\.sinc\)"):
        avalon.trace(f, x)

    @avalon.rule(np.sinc)
    def sinc_vjp(g, out, x):
        return (g * (np.cos(np.pi * x) - out) / x,)

    assert "sinc" in [n.prim.name for n in avalon.trace(f, x).calls]
    assert avalon.gradcheck(f, x)
    value, (g,) = avalon.grad(f, x)
    np.testing.assert_allclose(value, f(x))


def test_a_rule_makes_a_ufunc_traceable_and_differentiable(user_rules):
    user_rules(np.cbrt)
    f = lambda x: np.cbrt(x).sum()  # noqa: E731
    x = np.array([0.5, 2.0, -3.0])
    with pytest.raises(avalon.UnsupportedConstruct, match=r"@avalon\.rule\(np\.cbrt\)"):
        avalon.trace(f, x)

    @avalon.rule(np.cbrt)
    def cbrt_vjp(g, out, x):
        return (g / (3 * out * out),)

    assert avalon.gradcheck(f, x)
    np.testing.assert_allclose(avalon.grad(f, x)[1][0], np.abs(x) ** (-2 / 3) / 3)


def test_another_librarys_ufunc_is_named_and_takes_a_rule(user_rules):
    special = pytest.importorskip("scipy.special")
    user_rules(special.erf)
    f = lambda x: special.erf(x).sum()  # noqa: E731
    x = np.array([-1.0, 0.2, 0.7])
    with pytest.raises(avalon.UnsupportedConstruct, match=r"@avalon\.rule\(scipy\.special\.erf\)"):
        avalon.trace(f, x)

    @avalon.rule(special.erf)
    def erf_vjp(g, out, x):
        return (g * (2 / np.sqrt(np.pi)) * np.exp(-x * x),)

    assert avalon.gradcheck(f, x)


def inside_a_library(x):
    from scipy.special import logsumexp

    return logsumexp(x)  # library-call


def test_a_refusal_inside_a_library_points_at_the_users_call_and_wraps_the_function(user_rules):
    special = pytest.importorskip("scipy.special")
    user_rules(special.logsumexp)
    x = np.array([0.5, -1.0, 2.0])
    with pytest.raises(avalon.UnsupportedConstruct) as info:
        avalon.trace(inside_a_library, x)
    error = info.value
    assert (error.filename, error.lineno) == (HERE, line_of("library-call"))
    assert error.construct.endswith(", inside scipy.special.logsumexp")
    # Avalon has a primitive named logsumexp: the fix names scipy's apart
    assert "logsumexp = avalon.primitive(scipy.special.logsumexp, name='scipy.special.logsumexp')" in error.fix
    assert "@avalon.rule(scipy.special.logsumexp)" in error.fix

    # following the fix: the wrapped function is one recorded call, differentiable with the rule
    logsumexp = avalon.primitive(special.logsumexp, name="scipy.special.logsumexp")

    @avalon.rule(special.logsumexp)
    def logsumexp_vjp(g, out, x):
        return (g * np.exp(x - out),)

    assert [n.prim.name for n in avalon.trace(logsumexp, x).calls] == ["scipy.special.logsumexp"]
    assert avalon.gradcheck(lambda x: logsumexp(x * 2), x)
