"""Module hooks, as in PyTorch: forward pre-hooks, forward hooks, full backward (pre-)hooks.

>>> acts = {}
>>> handle = model.fc1.register_forward_hook(lambda m, args, out: acts.update(fc1=out.detach()))
>>> model(x); acts["fc1"]                      # this call's activation, traced call or replay
>>> handle.remove()

Hooks run once on every call, not only the one that traces: each runs through
`avalon.tracing.callbacks.call_hook`, with that call's values (Tensors); one that returns a value
changes the traced computation, and so its gradient, and what a hook stores keeps its gradient where
`forward` uses it. Backward hooks see the gradients of every `avalon.grad` call.

A module's hooks are a tuple of `Hook` records in its `_hooks` attribute, present only while it has
some (a model without hooks is called exactly as before), and replaced, never changed, when a hook is
registered or removed. The records compare by identity and are part of the module's static key, so a
registration or removal makes cached calls trace again, and a hooked module's compiled calls are its
own (the callbacks on its tape call its hooks with this very module).
"""
import warnings
import weakref

from ..ops import shape as sh
from ..tracing import Tracer
from ..tracing.callbacks import HookError, RemovableHandle, as_gradient, call_hook, describe, on_gradient


KINDS = ("forward_pre", "forward", "backward_pre", "backward")


class Hook:
    """One registration: the hook function, its kind and its options (compared by identity)."""

    __slots__ = ("kind", "fn", "with_kwargs", "always_call")

    def __init__(self, kind, fn, with_kwargs=False, always_call=False):
        self.kind, self.fn, self.with_kwargs, self.always_call = kind, fn, with_kwargs, always_call

    @property
    def title(self):
        """`forward hook save (model.py:12)`: for error messages and, in brackets, the tape."""
        return f"{self.kind.replace('_', ' ')} hook {describe(self.fn)}"

    def label(self):
        return f"<{self.title}>"


class ModuleHooks:
    """The hook registrations of `nn.Module` (torch's signatures); each returns a `RemovableHandle`.
    `Module` takes them as its own members."""

    def register_forward_pre_hook(self, hook, *, prepend=False, with_kwargs=False):
        """`hook(module, args)` before every `forward`; it may return new positional arguments (a
        tuple, or one value). With `with_kwargs=True`: `hook(module, args, kwargs)`, returning None or
        `(args, kwargs)`. `prepend=True` runs it before the hooks already registered."""
        return _register(self, Hook("forward_pre", hook, with_kwargs), prepend)

    def register_forward_hook(self, hook, *, prepend=False, with_kwargs=False, always_call=False):
        """`hook(module, args, output)` after every `forward`; it may return a new output. With
        `with_kwargs=True`: `hook(module, args, kwargs, output)`. `always_call=True` also calls it
        when the call fails while tracing (with the output so far, None if `forward` failed)."""
        return _register(self, Hook("forward", hook, with_kwargs, always_call), prepend)

    def register_full_backward_pre_hook(self, hook, prepend=False):
        """`hook(module, grad_output)` when the gradients of the module's outputs are known, at
        every `avalon.grad` call; it may return new ones (a tuple as long as `grad_output`)."""
        return _register(self, Hook("backward_pre", hook), prepend)

    def register_full_backward_hook(self, hook, prepend=False):
        """`hook(module, grad_input, grad_output)` when the gradients of the module's positional
        inputs are known, at every `avalon.grad` call; it may return a new `grad_input` (a tuple as
        long as it). Non-array inputs, and inputs no gradient reaches, have None."""
        return _register(self, Hook("backward", hook), prepend)


def _register(module, hook, prepend):
    hooks = module.__dict__.get("_hooks", ())
    module.__dict__["_hooks"] = (hook,) + hooks if prepend else hooks + (hook,)
    owner = weakref.ref(module)

    def remove():
        target = owner()
        if target is not None and hook in target.__dict__.get("_hooks", ()):
            rest = tuple(h for h in target.__dict__["_hooks"] if h is not hook)
            if rest:
                target.__dict__["_hooks"] = rest
            else:  # no hooks left: the module keys (and calls) as one that never had any
                del target.__dict__["_hooks"]

    return RemovableHandle(remove)


def call_with_hooks(module, hooks, args, kwargs):
    """`module.forward(*args, **kwargs)` with the module's hooks, in torch's order: forward pre-hooks,
    the backward hooks' input boundary, forward, forward hooks, the backward hooks' output boundary."""
    of_kind = {kind: [h for h in hooks if h.kind == kind] for kind in KINDS}
    output, called = None, set()
    try:
        for hook in of_kind["forward_pre"]:
            args, kwargs = _pre_hook(module, hook, args, kwargs)
        site = _BackwardSite(module, of_kind["backward_pre"], of_kind["backward"]) \
            if of_kind["backward_pre"] or of_kind["backward"] else None
        if site is not None:
            args = site.enter(args)
        output = module.forward(*args, **kwargs)
        for hook in of_kind["forward"]:
            called.add(hook)
            output = _forward_hook(module, hook, args, kwargs, output)
        return site.leave(output) if site is not None else output
    except Exception:
        for hook in of_kind["forward"]:
            if hook.always_call and hook not in called:
                try:
                    output = _forward_hook(module, hook, args, kwargs, output)
                except Exception as error:
                    warnings.warn(f"the {hook.title} (always_call=True) raised {error!r}, "
                                  "silenced because the call had failed already", stacklevel=3)
        raise


def _pre_hook(module, hook, args, kwargs):
    result = call_hook(hook.fn, (module,), (args, kwargs) if hook.with_kwargs else (args,), hook.label())
    if result is None:
        return args, kwargs
    if not hook.with_kwargs:
        return (result if isinstance(result, tuple) else (result,)), kwargs
    if not (isinstance(result, tuple) and len(result) == 2):
        raise HookError(f"the {hook.title} (with_kwargs=True) returned "
                        f"{type(result).__name__}\n  fix: return None, or a tuple (new_args, new_kwargs)")
    return result


def _forward_hook(module, hook, args, kwargs, output):
    hook_args = (args, kwargs, output) if hook.with_kwargs else (args, output)
    result = call_hook(hook.fn, (module,), hook_args, hook.label())
    return output if result is None else result


class _BackwardSite:
    """One traced call of a module with backward hooks.

    Its array inputs and outputs pass through identity nodes (boundaries) whose gradients are exactly
    the module's `grad_input` and `grad_output`, whatever else uses the same arrays. The hooks run as
    gradient hooks: the pre-hooks at the last output boundary (the backward pass reaches it first,
    when all of `grad_output` is in), the hooks at the last input boundary (when all of `grad_input`
    is in and none has been passed on), or with the pre-hooks when no input is traced.
    """

    def __init__(self, module, pre_hooks, hooks):
        self.module, self.pre_hooks, self.hooks = module, pre_hooks, hooks
        self.inputs, self.n_inputs = {}, 0  # position -> boundary tracer, among the positional arguments
        self.outputs, self.n_outputs = {}, 0  # the same among the outputs (one, or a tuple)

    def enter(self, args):
        self.n_inputs = len(args)
        self.inputs = {i: _boundary(a) for i, a in enumerate(args) if isinstance(a, Tracer)}
        return tuple(self.inputs.get(i, a) for i, a in enumerate(args))

    def leave(self, output):
        items = output if isinstance(output, tuple) else (output,)
        self.n_outputs = len(items)
        self.outputs = {j: _boundary(o) for j, o in enumerate(items) if isinstance(o, Tracer)}
        if not self.outputs:
            warnings.warn(f"backward hooks of {type(self.module).__name__} are not called: its output "
                          f"is {type(output).__name__}, not an array or a tuple of arrays", stacklevel=4)
            return output
        last_output = list(self.outputs.values())[-1]
        on_gradient(last_output._trace, last_output._node, self._before)
        last = list(self.inputs.values())[-1] if self.inputs else last_output
        on_gradient(last._trace, last._node, self._after)
        items = [self.outputs.get(j, o) for j, o in enumerate(items)]
        if not isinstance(output, tuple):
            return items[0]
        return type(output)(*items) if hasattr(type(output), "_fields") else tuple(items)

    def _before(self, grads):
        grad_output = _gathered(grads, self.outputs, self.n_outputs)
        if all(g is None for g in grad_output):
            return  # no gradient reaches this call of the module
        for hook in self.pre_hooks:
            result = call_hook(hook.fn, (self.module,), (grad_output,), hook.label())
            if result is not None:
                grad_output = self._replace(grads, self.outputs, result, grad_output, hook)

    def _after(self, grads):
        grad_output = _gathered(grads, self.outputs, self.n_outputs)
        if all(g is None for g in grad_output):
            return
        grad_input = _gathered(grads, self.inputs, self.n_inputs)
        no_input_gradient = all(g is None for g in grad_input)
        for hook in self.hooks:
            result = call_hook(hook.fn, (self.module,), (grad_input, grad_output), hook.label())
            if result is None or no_input_gradient and all(r is None for r in _as_tuple(result)):
                continue
            if no_input_gradient:
                raise HookError(f"the {hook.title} returned gradients for the inputs of "
                                f"{type(self.module).__name__}, but no gradient reaches them\n"
                                "  fix: return None (or a tuple of None) when grad_input holds only None")
            grad_input = self._replace(grads, self.inputs, result, grad_input, hook)

    def _replace(self, grads, boundaries, result, old, hook):
        """Put a hook's new gradients (one per entry of `old`) in place of the boundaries' gradients."""
        result = _as_tuple(result)
        if len(result) != len(old):
            raise HookError(f"the {hook.title} returned {len(result)} gradients for {len(old)}\n"
                            "  fix: return a tuple as long as the one it was given (None where it has None)")
        for position, tracer in boundaries.items():
            if result[position] is None:
                grads.pop(tracer._node, None)
            else:
                grads[tracer._node] = as_gradient(result[position], tracer._node, tracer._trace, hook.title)
        return _gathered(grads, boundaries, len(old))


def _boundary(tracer):
    """An identity node: what flows back into it is the gradient of this very use of `tracer`."""
    return sh.reshape(tracer, shape=tracer.shape)


def _gathered(grads, boundaries, n):
    return tuple(grads.get(boundaries[i]._node) if i in boundaries else None for i in range(n))


def _as_tuple(result):
    return tuple(result) if isinstance(result, (tuple, list)) else (result,)
