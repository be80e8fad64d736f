"""What every view shares: the canvas widget (graph + side panel, clicks sent back to Python), the
selection that a Workbench shares between views, and rendering to static HTML."""
import anywidget
import ipywidgets as w
import traitlets

from avalon.autodiff import grad_tape
from avalon.errors import GradientError
from avalon.tape import Tape
from avalon.tracing import trace

from .page import CSS, ESM, document


class Canvas(anywidget.AnyWidget):
    """The graph (`main`) and side panel (`side`) as HTML, `focus` (an element id) kept in view;
    clicks come back as `event`
    ({action: 'select' | 'toggle' | 'expand' | 'collapse', target: element id or label})."""

    _esm = ESM
    _css = CSS
    main = traitlets.Unicode("").tag(sync=True)
    side = traitlets.Unicode("").tag(sync=True)
    focus = traitlets.Unicode("").tag(sync=True)  # an element id kept in view (panned, zoomed to)
    event = traitlets.Dict({}).tag(sync=True)


class Selection(traitlets.HasTraits):
    """The selected node's label (`%7`), shared by the views of one Workbench."""

    label = traitlets.Unicode("")


def tape_of(f_or_tape, args):
    """A tape to show: the given one, else f's forward+backward tape (forward only when f's output
    is not a scalar and so has no default backward pass)."""
    if isinstance(f_or_tape, Tape):
        if args:
            raise TypeError("pass either a tape or a function and its arguments, not both")
        return f_or_tape
    if not callable(f_or_tape):
        raise TypeError(f"expected a function and its arguments, or a Tape; got a {type(f_or_tape).__name__}. "
                        "Pass the function itself, as in TapeView(loss_fn, model, x, y), not the value "
                        "of a call to it")
    try:
        return grad_tape(f_or_tape, *args)
    except GradientError:
        return trace(f_or_tape, *args)


class View(w.VBox):
    """Base of the workbench views: a VBox of controls and a Canvas, plus `to_html()`.

    In a notebook the view is a live widget; exported (nbconvert with no widget state, or
    `to_html()`) it is a self-contained static copy.
    """

    kind = "view"
    title = "Avalon"

    def __init__(self, selection=None, **kwargs):
        super().__init__(**kwargs)
        self.add_class("avalon-view")
        self.add_class(f"avalon-{self.kind}")
        self.selection = selection if selection is not None else Selection()
        self.canvas = Canvas()
        self.canvas.observe(self._on_event, names="event")
        self.status = w.HTML("", layout=w.Layout(margin="0"))
        self.status.add_class("avalon-status")

    def _on_event(self, change):
        event = change["new"] or {}
        try:
            self.handle(event.get("action"), event.get("target"))
        except KeyError as exc:
            self.status.value = f'<span class="avalon-bad">{exc.args[0]}</span>'

    def handle(self, action, target):
        """Act on a click in the canvas (overridden by views)."""

    def fragment(self):
        """The static HTML of this view (a `<div>`, no document around it)."""
        raise NotImplementedError

    def to_html(self):
        """One self-contained HTML document: inline SVG, styles and scripts, nothing fetched."""
        return document(self.title, self.fragment())

    def _repr_mimebundle_(self, **kwargs):
        # the static copy rides along: nbconvert uses it when no widget state was saved
        bundle = super()._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        data["text/html"] = self.fragment()
        return bundle


def button(description, tooltip, on_click, icon=""):
    b = w.Button(description=description, tooltip=tooltip, icon=icon, layout=w.Layout(width="auto"))
    b.on_click(lambda _: on_click())
    return b
