"""Steps write into the parameters and the state in place: gradients are only read, whatever their layout or
aliasing, parameters of any dtype and size share the scratch memory, and only numpy-like arrays are taken."""
import numpy as np
import pytest

import avalon.optim as optim
from avalon.optim import OptimizerError

# Options that take every path through the shared gradient handling: L2 or decoupled decay, maximize.
CASES = [
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1, maximize=True)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.5)),
    ("Adam", dict(lr=0.1, amsgrad=True, weight_decay=0.1, maximize=True)),
    ("AdamW", dict(lr=0.1, betas=(0.3, 0.9))),
    ("RMSprop", dict(momentum=0.9, centered=True, weight_decay=0.1, maximize=True)),
    ("Adagrad", dict(weight_decay=0.1, maximize=True)),
    ("Adadelta", dict(weight_decay=0.1)),
    ("Adamax", dict(weight_decay=0.1, maximize=True)),
    ("NAdam", dict(weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("RAdam", dict(weight_decay=0.1)),
]
IDS = [f"{name}-{i}" for i, (name, _) in enumerate(CASES)]
STEPS = 8  # past RAdam's switch to the adaptive step (the sixth)


def _problem(rng, dtype=np.float64):
    params = [rng.standard_normal((5, 3)).astype(dtype), rng.standard_normal(4).astype(dtype)]
    grads = [[rng.standard_normal(p.shape).astype(dtype) for p in params] for _ in range(STEPS)]
    return params, grads


def _trajectory(name, options, params, grads, transform=lambda g, params: g):
    params = [p.copy() for p in params]
    opt = getattr(optim, name)(params, **options)
    for step_grads in grads:
        opt.step(transform([g.copy() for g in step_grads], params))
    return params


@pytest.mark.parametrize("name,options", CASES, ids=IDS)
def test_gradients_are_only_read(name, options, rng):
    params, grads = _problem(rng)
    opt = getattr(optim, name)(params, **options)
    for step_grads in grads:
        frozen = [g.copy() for g in step_grads]
        for g in frozen:
            g.flags.writeable = False  # a write into a gradient raises
        opt.step(frozen)
        for g, original in zip(frozen, step_grads):
            np.testing.assert_array_equal(g, original)


@pytest.mark.parametrize("name,options", CASES, ids=IDS)
def test_parameters_and_state_arrays_keep_their_identity(name, options, rng):
    params, grads = _problem(rng)
    kept = list(params)
    opt = getattr(optim, name)(params, **options)
    opt.step(grads[0])
    state = {id(p): {k: v for k, v in opt.state[p].items() if isinstance(v, np.ndarray)} for p in params}
    before = [p.copy() for p in params]
    for step_grads in grads[1:]:
        opt.step(step_grads)
    for p, k, b in zip(params, kept, before):
        assert p is k and not np.array_equal(p, b)
        for key, array in state[id(p)].items():
            assert opt.state[p][key] is array, key


@pytest.mark.parametrize("name,options", CASES, ids=IDS)
def test_a_transposed_gradient_gives_the_same_step(name, options, rng):
    """Linear's weight gradient comes back as a transposed view; the step must not depend on the layout."""
    params, grads = _problem(rng)
    plain = _trajectory(name, options, params, grads)
    fortran = _trajectory(name, options, params, grads, lambda gs, _: [np.asfortranarray(g) for g in gs])
    assert not np.asfortranarray(grads[0][0]).flags.c_contiguous
    for a, b in zip(plain, fortran):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name,options", CASES, ids=IDS)
def test_a_gradient_that_is_another_parameter_is_read_before_it_changes(name, options, rng):
    """Passing a parameter as a gradient is legal; updating the first parameter in place must not change the
    gradient the second one sees."""
    params, _ = _problem(rng)
    params = [params[0], params[0][:, 0].copy() + 1.0]  # the second parameter's gradient is a view of the first
    grads = [[rng.standard_normal((5, 3))] for _ in range(STEPS)]

    def alias(gs, current):
        return [gs[0], current[0][:, 1]]

    def copied(gs, current):
        return [gs[0], current[0][:, 1].copy()]

    for a, b in zip(_trajectory(name, options, params, grads, alias),
                    _trajectory(name, options, params, grads, copied)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name,options", CASES, ids=IDS)
def test_parameters_of_different_dtypes_and_sizes_step_as_if_alone(name, options, rng):
    """One optimiser's scratch memory is shared by all its parameters: sizes up and down, two dtypes."""
    shapes, dtypes = [(2,), (6, 5), (3,), (4, 4), ()], [np.float32, np.float64, np.float64, np.float32, np.float64]
    params = [rng.standard_normal(s).astype(d) for s, d in zip(shapes, dtypes)]
    grads = [[rng.standard_normal(s).astype(d) for s, d in zip(shapes, dtypes)] for _ in range(STEPS)]
    together = _trajectory(name, options, params, grads)
    for i, p in enumerate(together):
        alone = _trajectory(name, options, [params[i]], [[g[i]] for g in grads])
        assert p.dtype == dtypes[i]
        np.testing.assert_array_equal(p, alone[0])


def test_arrays_without_out_are_refused_with_the_reason():
    xp = pytest.importorskip("array_api_strict")
    with pytest.raises(OptimizerError, match="numpy and cupy") as info:
        optim.Adam([xp.asarray([1.0, 2.0])])
    assert "in place" in str(info.value) and "test_in_place.py" in str(info.value)


def test_a_state_dict_whose_scalar_is_not_a_number_is_refused_and_changes_nothing(rng):
    params, grads = _problem(rng)
    opt = optim.Adam(params)
    opt.step(grads[0])
    saved = opt.state_dict()
    saved["state"][0]["step"] = "three"
    with pytest.raises(OptimizerError, match="'step' of parameter 0 is a str"):
        opt.load_state_dict(saved)
    assert opt.state[params[0]]["step"] == 1.0


def test_memory_kept_between_steps_is_the_state_and_one_scratch_per_temporary(rng):
    # SGD with momentum reads its gradients as they are: one scratch array (its one temporary), sized by
    # the largest parameter; the copies that make the first step undoable are not kept once steps
    # cannot fail.
    params, grads = _problem(rng, np.float32)
    opt = optim.SGD(params, lr=0.1, momentum=0.9)
    opt.step(grads[0])
    assert "_step_undo" not in vars(opt)
    opt.step(grads[1])
    assert [flat.size for flat in opt._scratch._flat.values()] == [max(p.size for p in params)]
    transposed = [np.ascontiguousarray(g.T).T for g in grads[2]]  # another layout: copied into scratch
    opt.step(transposed)
    assert [flat.size for flat in opt._scratch._flat.values()] == [2 * max(p.size for p in params)]
